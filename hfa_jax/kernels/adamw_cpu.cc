// One AdamW step for XLA:CPU in a single pass over each parameter, float32.
//
// optax.adamw compiles to three loop fusions per parameter (the first moment, the second
// moment, then the parameter from both), 40 bytes of memory traffic per parameter. This
// kernel reads the parameter, its gradient and both moments once and writes the parameter
// and the moments back in place: 28 bytes. The optimiser is memory-bound on a small machine
// (HFA-Net has 24 M parameters per fold), so the bytes are its time.
//
//   hfa_adamw: p, g, mu, nu (L..., N...), neg_lr, bc1, bc2 (L...) -> p, mu, nu (in place)
//
// with L the leading "model" dimensions of the scalars (none for one model, the folds under
// jax.vmap). Per element, in optax's order of operations (the caller computes the step's
// scalars: neg_lr = -lr(t), bc1 = 1 - b1^t, bc2 = 1 - b2^t, and passes the hyperparameters
// as float32 rounded as JAX rounds them, with c1 = 1 - b1 and c2 = 1 - b2):
//
//   mu = c1 g + b1 mu;   nu = c2 g^2 + b2 nu
//   p  = p + neg_lr ((mu / bc1) / (sqrt(nu / bc2) + eps) + wd p)
//
// dividing by bc1 and bc2 as XLA does, by multiplying with their reciprocals.
//
// Chunks of each model's elements run on XLA's intra-op threads; every element is computed
// alone, so the result does not depend on the threads.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using hfa::ParallelFor;

namespace {

constexpr int64_t kChunk = int64_t{1} << 15;  // elements per task (128 KB of each array)

ffi::Error AdamW(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> p, ffi::Buffer<ffi::F32> g,
                 ffi::Buffer<ffi::F32> mu, ffi::Buffer<ffi::F32> nu,
                 ffi::Buffer<ffi::F32> neg_lr, ffi::Buffer<ffi::F32> bc1,
                 ffi::Buffer<ffi::F32> bc2, ffi::ResultBuffer<ffi::F32> p_out,
                 ffi::ResultBuffer<ffi::F32> mu_out, ffi::ResultBuffer<ffi::F32> nu_out,
                 float b1, float c1, float b2, float c2, float eps, float wd) {
  const auto pd = p.dimensions();
  const auto sd = neg_lr.dimensions();
  const auto same = [](auto a, auto b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  };
  if (!same(g.dimensions(), pd) || !same(mu.dimensions(), pd) || !same(nu.dimensions(), pd) ||
      !same(bc1.dimensions(), sd) || !same(bc2.dimensions(), sd) || sd.size() > pd.size() ||
      !std::equal(sd.begin(), sd.end(), pd.begin())) {
    return ffi::Error::InvalidArgument(
        "adamw: p, g, mu, nu must share a shape (L..., N...), neg_lr, bc1, bc2 be (L...)");
  }
  const int64_t models = neg_lr.element_count();
  const int64_t n = models ? p.element_count() / models : 0;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const float* pp = p.typed_data();
  const float* gp = g.typed_data();
  const float* mp = mu.typed_data();
  const float* vp = nu.typed_data();
  float* po = p_out->typed_data();
  float* mo = mu_out->typed_data();
  float* vo = nu_out->typed_data();
  const float* lr = neg_lr.typed_data();
  const float* s1 = bc1.typed_data();
  const float* s2 = bc2.typed_data();
  ParallelFor(pool, models * chunks, [&](int64_t task) {
    const int64_t m = task / chunks, chunk = task % chunks;
    const int64_t begin = m * n + chunk * kChunk;
    const int64_t end = m * n + std::min(n, (chunk + 1) * kChunk);
    // XLA divides by a scalar as a multiplication by its reciprocal; so does this kernel.
    const float step = lr[m], r1 = 1.0f / s1[m], r2 = 1.0f / s2[m];
    // In place: element i is read before it is written, and no other (so: vectorise).
#pragma GCC ivdep
    for (int64_t i = begin; i < end; ++i) {
      const float gi = gp[i];
      const float m1 = c1 * gi + b1 * mp[i];
      const float m2 = c2 * (gi * gi) + b2 * vp[i];
      const float update = (m1 * r1) / (std::sqrt(m2 * r2) + eps) + wd * pp[i];
      po[i] = pp[i] + step * update;
      mo[i] = m1;
      vo[i] = m2;
    }
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaAdamW, AdamW,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("b1")
                                  .Attr<float>("c1")
                                  .Attr<float>("b2")
                                  .Attr<float>("c2")
                                  .Attr<float>("eps")
                                  .Attr<float>("wd"));
