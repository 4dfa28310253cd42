// Dense k x k cross-correlation (stride s, symmetric zero padding p) for XLA:CPU, NHWC float32:
//
//   hfa_conv_forward: x (L, B, H, W, Cin), w (L, k, k, Cin, Cout) -> y (L, B, Ho, Wo, Cout)
//
//   y[m, b, yo, xo, co] = sum_{i, j, ci} x[m, b, s*yo + i - p, s*xo + j - p, ci] * w[m, i, j, ci, co]
//
// with L any number of leading "model" dimensions (the folds under jax.vmap). Under a vmap
// XLA:CPU makes the models' convolutions one grouped convolution, which it runs slowly; the
// batched matmul of the k*k taps (ops.conv.stacked_conv) first writes patches k*k times the
// input, and the sum of products for few input channels (ops.conv.stacked_tap_conv) is an
// elementwise expression that XLA fuses into, and recomputes in, each of its consumers. Here
// each output position's Cout channels are vector lanes: a block of positions of one output
// row and up to four vectors of channels stay in registers while every tap's input entry is
// broadcast against the tap's weights. Each image is first copied into a zero-padded buffer,
// so the inner loops have no bounds. Every output is one sum in a fixed order (taps row-major,
// then input channels): the result does not depend on the number of threads.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "direct_conv.h"
#include "parallel.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using hfa::Geometry;
using hfa::kLanes;
using hfa::ParallelFor;

namespace {

// One image: copied into the zero-padded buffer, then row by row.
void Image(const float* x, const float* w, const Geometry& g, float* y, std::vector<float>& buf) {
  hfa::PadImage(x, g, buf);
  for (int64_t yo = 0; yo < g.ho; ++yo) hfa::ConvRow(buf.data(), w, g, yo, y + yo * g.wo * g.cout);
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t stride, int64_t pad) {
  auto xd = x.dimensions();
  auto wd = w.dimensions();
  auto yd = y->dimensions();
  if (xd.size() < 4 || wd.size() != xd.size() || yd.size() != xd.size()) {
    return ffi::Error::InvalidArgument(
        "conv_forward: x (..., B, H, W, Cin), w (..., k, k, Cin, Cout), y (..., B, Ho, Wo, Cout)");
  }
  const size_t lead = xd.size() - 4;
  int64_t models = 1;
  for (size_t i = 0; i < lead; ++i) {
    if (xd[i] != wd[i] || xd[i] != yd[i]) {
      return ffi::Error::InvalidArgument("conv_forward: leading dims differ");
    }
    models *= xd[i];
  }
  const int64_t batch = xd[lead];
  Geometry g{xd[lead + 1], xd[lead + 2], xd[lead + 3], yd[lead + 1], yd[lead + 2],
             yd[lead + 3], wd[lead], stride, pad, 0, 0, 0};
  g.hp = g.h + 2 * pad;
  g.wp = g.w + 2 * pad;
  g.coutp = (g.cout + kLanes - 1) / kLanes * kLanes;
  if (yd[lead] != batch || wd[lead + 1] != g.k || wd[lead + 2] != g.cin || wd[lead + 3] != g.cout ||
      stride < 1 || pad < 0 || g.hp < g.k || g.wp < g.k ||
      g.ho != (g.hp - g.k) / stride + 1 || g.wo != (g.wp - g.k) / stride + 1) {
    return ffi::Error::InvalidArgument("conv_forward: shapes do not match stride and pad");
  }
  const float* xs = x.typed_data();
  const float* ws = w.typed_data();
  float* ys = y->typed_data();
  const int64_t taps = g.k * g.k * g.cin;
  std::vector<float> padded;
  ws = hfa::PaddedWeights(ws, models, taps, g, padded);
  const int64_t in_size = g.h * g.w * g.cin, out_size = g.ho * g.wo * g.cout;
  ParallelFor(pool, models * batch, [&](int64_t task) {
    thread_local std::vector<float> buf;
    const int64_t m = task / batch;
    Image(xs + task * in_size, ws + m * taps * g.coutp, g, ys + task * out_size, buf);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaConvForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad"));
