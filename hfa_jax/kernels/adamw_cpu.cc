// One AdamW (or Adam with L2) step, and one SGD-with-momentum step, for XLA:CPU in a single
// pass over each parameter, float32.
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
//   g  = g + l2 p    (optax.add_decayed_weights before optax.adam: Adam with L2, 'adam')
//   mu = c1 g + b1 mu;   nu = c2 g^2 + b2 nu
//   p  = p + neg_lr ((mu / bc1) / (sqrt(nu / bc2) + eps) + wd p)
//
// dividing by bc1 and bc2 as XLA does, by multiplying with their reciprocals. AdamW has
// l2 = 0, Adam with L2 wd = 0 (adding 0 p changes no finite number).
//
//   hfa_sgd: p, g, trace (L..., N...), neg_lr (L...) -> p, trace (in place)
//
//   trace = (g + l2 p) + momentum trace;   p = p + neg_lr trace
//
// (optax.add_decayed_weights, optax.trace, optax.scale_by_learning_rate: PyTorch's SGD with
// momentum, no dampening, no Nesterov).
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
                 float b1, float c1, float b2, float c2, float eps, float wd, float l2) {
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
      const float gi = l2 == 0.0f ? gp[i] : gp[i] + l2 * pp[i];
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

ffi::Error Sgd(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> p, ffi::Buffer<ffi::F32> g,
               ffi::Buffer<ffi::F32> trace, ffi::Buffer<ffi::F32> neg_lr,
               ffi::ResultBuffer<ffi::F32> p_out, ffi::ResultBuffer<ffi::F32> trace_out,
               float momentum, float l2) {
  const auto pd = p.dimensions();
  const auto sd = neg_lr.dimensions();
  const auto same = [](auto a, auto b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  };
  if (!same(g.dimensions(), pd) || !same(trace.dimensions(), pd) || sd.size() > pd.size() ||
      !std::equal(sd.begin(), sd.end(), pd.begin())) {
    return ffi::Error::InvalidArgument(
        "sgd: p, g, trace must share a shape (L..., N...), neg_lr be (L...)");
  }
  const int64_t models = neg_lr.element_count();
  const int64_t n = models ? p.element_count() / models : 0;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const float* pp = p.typed_data();
  const float* gp = g.typed_data();
  const float* tp = trace.typed_data();
  float* po = p_out->typed_data();
  float* to = trace_out->typed_data();
  const float* lr = neg_lr.typed_data();
  ParallelFor(pool, models * chunks, [&](int64_t task) {
    const int64_t m = task / chunks, chunk = task % chunks;
    const int64_t begin = m * n + chunk * kChunk;
    const int64_t end = m * n + std::min(n, (chunk + 1) * kChunk);
    const float step = lr[m];
#pragma GCC ivdep
    for (int64_t i = begin; i < end; ++i) {
      const float gi = l2 == 0.0f ? gp[i] : gp[i] + l2 * pp[i];
      const float t = gi + momentum * tp[i];
      po[i] = pp[i] + step * t;
      to[i] = t;
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
                                  .Attr<float>("wd")
                                  .Attr<float>("l2"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaSgd, Sgd,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("momentum")
                                  .Attr<float>("l2"));
