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

#include "parallel.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using hfa::kLanes;
using hfa::ParallelFor;
using hfa::Vec;

namespace {

struct Geometry {
  int64_t h, w, cin, ho, wo, cout, k, stride, pad;
  int64_t hp, wp;  // the padded image
  int64_t coutp;   // Cout rounded up to whole vectors: the weights' row length
};

// Positions of one output row kept in registers per vector count NV (accumulators P * NV).
constexpr int MaxPositions(int nv) { return nv == 1 ? 12 : nv == 2 ? 8 : 6; }

// out[q, v] = sum over the window row entries t < k*Cin, window rows i < k, of
// in[q * step + i * row + t] * w[(i * k*Cin + t) * coutp + v * kLanes ...].
template <int P, int NV>
inline void Block(const float* in, const float* w, const Geometry& g, float* out, int64_t valid) {
  Vec acc[P][NV] = {};
  const int64_t run = g.k * g.cin, row = g.wp * g.cin, step = g.stride * g.cin;
  for (int64_t i = 0; i < g.k; ++i) {
    const float* x0 = in + i * row;
    const float* w0 = w + i * run * g.coutp;
    for (int64_t t = 0; t < run; ++t) {
      Vec wv[NV];
      for (int v = 0; v < NV; ++v) wv[v] = hfa::V(w0 + t * g.coutp + v * kLanes);
      for (int q = 0; q < P; ++q) {
        const float xb = x0[q * step + t];
        for (int v = 0; v < NV; ++v) acc[q][v] += xb * wv[v];
      }
    }
  }
  for (int q = 0; q < P; ++q) {
    float* o = out + q * g.cout;
    if (valid == NV * kLanes) {
      for (int v = 0; v < NV; ++v) hfa::V(o + v * kLanes) = acc[q][v];
    } else {
      std::memcpy(o, &acc[q][0], sizeof(float) * valid);
    }
  }
}

// Block for `positions` (1..MaxPositions(NV)) positions, a compile-time count chosen at run time.
template <int NV, int P = MaxPositions(NV)>
inline void Positions(int positions, const float* in, const float* w, const Geometry& g,
                      float* out, int64_t valid) {
  if constexpr (P > 0) {
    if (positions == P) {
      Block<P, NV>(in, w, g, out, valid);
    } else {
      Positions<NV, P - 1>(positions, in, w, g, out, valid);
    }
  }
}

template <int NV>
void Row(const float* xp, const float* w, const Geometry& g, int64_t yo, int64_t co, float* y) {
  constexpr int kP = MaxPositions(NV);
  const int64_t valid = std::min<int64_t>(NV * kLanes, g.cout - co);
  const float* in = xp + g.stride * yo * g.wp * g.cin;
  float* out = y + yo * g.wo * g.cout + co;
  for (int64_t xo = 0; xo < g.wo; xo += kP) {
    const int n = static_cast<int>(std::min<int64_t>(kP, g.wo - xo));
    Positions<NV>(n, in + g.stride * xo * g.cin, w + co, g, out + xo * g.cout, valid);
  }
}

// One image: copied into the zero-padded buffer, then each block of output channels row by row.
void Image(const float* x, const float* w, const Geometry& g, float* y, std::vector<float>& buf) {
  buf.assign(g.hp * g.wp * g.cin, 0.0f);
  for (int64_t r = 0; r < g.h; ++r) {
    std::memcpy(buf.data() + ((r + g.pad) * g.wp + g.pad) * g.cin, x + r * g.w * g.cin,
                sizeof(float) * g.w * g.cin);
  }
  const float* xp = buf.data();
  for (int64_t co = 0; co < g.cout; co += 4 * kLanes) {
    const int64_t vectors = std::min<int64_t>(4, (g.cout - co + kLanes - 1) / kLanes);
    for (int64_t yo = 0; yo < g.ho; ++yo) {
      switch (vectors) {
        case 1: Row<1>(xp, w, g, yo, co, y); break;
        case 2: Row<2>(xp, w, g, yo, co, y); break;
        case 3: Row<3>(xp, w, g, yo, co, y); break;
        default: Row<4>(xp, w, g, yo, co, y); break;
      }
    }
  }
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
  // Weights whose rows are not whole vectors are copied into rows of coutp (zeros after Cout).
  std::vector<float> padded;
  if (g.coutp != g.cout) {
    padded.assign(models * taps * g.coutp, 0.0f);
    for (int64_t r = 0; r < models * taps; ++r) {
      std::memcpy(padded.data() + r * g.coutp, ws + r * g.cout, sizeof(float) * g.cout);
    }
    ws = padded.data();
  }
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
