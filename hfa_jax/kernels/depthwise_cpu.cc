// Depthwise k x k convolution (stride 1, symmetric zero padding) for XLA:CPU, NHWC float32.
//
// XLA:CPU runs grouped convolutions on a slow path, and the pure-JAX form (a sum of k*k
// shifted copies) makes it materialise the shifted copies for the weight gradient. These
// two kernels read each input once per output row and keep the row in cache:
//
//   hfa_depthwise_forward:     x (L, B, H, W, C), w (L, k, k, C)        -> y (L, B, Ho, Wo, C)
//   hfa_depthwise_weight_grad: x (L, B, H, W, C), g (L, B, Ho, Wo, C)   -> dw (L, k, k, C)
//
// with Ho = H + 2p - k + 1 and L any number of leading "model" dimensions (1 for one model,
// the number of folds under jax.vmap). The input gradient is the forward kernel applied to g
// with the kernel flipped and padding k - 1 - p. Rows are shared between XLA's intra-op
// threads; the weight gradient sums fixed chunks in a fixed order, so it is deterministic.
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
using hfa::V;
using hfa::Vec;

namespace {

constexpr int64_t kMaxK = 16;  // largest kernel side
constexpr int kColumns = 8;    // output columns per register block

struct Geometry {
  int64_t models, batch, h, w, c, k, ho, wo;
};

ffi::Error Check(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w, int64_t pad,
                 Geometry* geo) {
  if (x.size() < 4 || w.size() < 3 || x.size() != w.size() + 1) {
    return ffi::Error::InvalidArgument("depthwise: x must be (..., B, H, W, C), w (..., k, k, C)");
  }
  const size_t lead = w.size() - 3;
  int64_t models = 1;
  for (size_t i = 0; i < lead; ++i) {
    if (x[i] != w[i]) return ffi::Error::InvalidArgument("depthwise: leading dims differ");
    models *= w[i];
  }
  Geometry g{models, x[lead], x[lead + 1], x[lead + 2], x[lead + 3], w[lead], 0, 0};
  if (w[lead + 1] != g.k || w[lead + 2] != g.c) {
    return ffi::Error::InvalidArgument("depthwise: w must be (..., k, k, C) with x's C");
  }
  g.ho = g.h + 2 * pad - g.k + 1;
  g.wo = g.w + 2 * pad - g.k + 1;
  if (g.k > kMaxK) return ffi::Error::InvalidArgument("depthwise: kernel side above 16");
  if (g.ho <= 0 || g.wo <= 0 || pad < 0) {
    return ffi::Error::InvalidArgument("depthwise: empty output");
  }
  *geo = g;
  return ffi::Error::Success();
}


// One output row: y[n, yo, :, :] = sum_ij x[n, yo + i - p, xo + j - p, :] * w[i, j, :], the
// taps added in (i, j) order. With C a multiple of the vector width, kColumns outputs of one
// channel vector sum all their taps in registers (each w vector loaded once for them).
inline void ForwardRow(const float* x, const float* w, float* y, const Geometry& g, int64_t pad,
                       int64_t n, int64_t yo) {
  const int64_t c = g.c, k = g.k;
  float* yrow = y + (n * g.ho + yo) * g.wo * c;
  const float* xrows[kMaxK];
  const float* wrows[kMaxK];
  int rows = 0;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t yi = yo + i - pad;
    if (yi < 0 || yi >= g.h) continue;
    xrows[rows] = x + (n * g.h + yi) * g.w * c;
    wrows[rows++] = w + i * k * c;
  }
  if (c % kLanes != 0) {
    std::memset(yrow, 0, sizeof(float) * g.wo * c);
    for (int r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < k; ++j) {
        const float* __restrict__ wij = wrows[r] + j * c;
        const int64_t lo = std::max<int64_t>(0, pad - j);
        const int64_t hi = std::min<int64_t>(g.wo, g.w + pad - j);
        for (int64_t xo = lo; xo < hi; ++xo) {
          const float* __restrict__ xs = xrows[r] + (xo + j - pad) * c;
          float* __restrict__ ys = yrow + xo * c;
          for (int64_t ch = 0; ch < c; ++ch) ys[ch] += xs[ch] * wij[ch];
        }
      }
    }
    return;
  }
  for (int64_t x0 = 0; x0 < g.wo; x0 += kColumns) {
    const int64_t cols = std::min<int64_t>(kColumns, g.wo - x0);
    // Every tap of every column in the block inside the image: no checks in the inner loop.
    const bool inside = cols == kColumns && x0 >= pad && x0 + kColumns - 1 + k - 1 - pad < g.w;
    for (int64_t ch = 0; ch < c; ch += kLanes) {
      Vec acc[kColumns] = {};
      for (int r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < k; ++j) {
          const Vec wv = V(wrows[r] + j * c + ch);
          const float* xs = xrows[r] + (x0 + j - pad) * c + ch;
          if (inside) {
            for (int b = 0; b < kColumns; ++b) acc[b] += V(xs + b * c) * wv;
          } else {
            for (int b = 0; b < cols; ++b) {
              const int64_t xi = x0 + b + j - pad;
              if (xi >= 0 && xi < g.w) acc[b] += V(xs + b * c) * wv;
            }
          }
        }
      }
      for (int b = 0; b < cols; ++b) V(yrow + (x0 + b) * c + ch) = acc[b];
    }
  }
}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::ResultBuffer<ffi::F32> y, int64_t pad) {
  Geometry g;
  if (auto e = Check(x.dimensions(), w.dimensions(), pad, &g); e.failure()) return e;
  const float* xp = x.typed_data();
  const float* wp = w.typed_data();
  float* yp = y->typed_data();
  const int64_t rows = g.models * g.batch * g.ho;
  const int64_t per_task = std::max<int64_t>(1, rows / (8 * std::max<int64_t>(1, pool.num_threads() + 1)));
  ParallelFor(pool, (rows + per_task - 1) / per_task, [&](int64_t t) {
    const int64_t end = std::min(rows, (t + 1) * per_task);
    for (int64_t r = t * per_task; r < end; ++r) {
      const int64_t n = r / g.ho;                       // image index over models * batch
      const float* wm = wp + (n / g.batch) * g.k * g.k * g.c;
      ForwardRow(xp, wm, yp, g, pad, n, r % g.ho);
    }
  });
  return ffi::Error::Success();
}

// dw[m, i, j, :] = sum_{b, yo, xo} x[m, b, yo + i - p, xo + j - p, :] * g[m, b, yo, xo, :].
ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy,
                      ffi::ResultBuffer<ffi::F32> dw, int64_t pad) {
  auto wdims = dw->dimensions();
  Geometry g;
  if (auto e = Check(x.dimensions(), wdims, pad, &g); e.failure()) return e;
  const float* xp = x.typed_data();
  const float* gp = gy.typed_data();
  float* out = dw->typed_data();
  const int64_t kkc = g.k * g.k * g.c;
  // A fixed number of chunks per model, each with its own partial sum, added in order:
  // the result does not depend on the number of threads or on scheduling.
  const int64_t rows = g.batch * g.ho;
  const int64_t chunks = std::min<int64_t>(rows, 16);
  std::vector<float> partial(g.models * chunks * kkc, 0.0f);
  ParallelFor(pool, g.models * chunks, [&](int64_t task) {
    const int64_t m = task / chunks, chunk = task % chunks;
    float* acc = partial.data() + task * kkc;
    const int64_t begin = rows * chunk / chunks, end = rows * (chunk + 1) / chunks;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = m * g.batch + r / g.ho, yo = r % g.ho;
      const float* grow = gp + (n * g.ho + yo) * g.wo * g.c;
      for (int64_t i = 0; i < g.k; ++i) {
        const int64_t yi = yo + i - pad;
        if (yi < 0 || yi >= g.h) continue;
        const float* xrow = xp + (n * g.h + yi) * g.w * g.c;
        for (int64_t j = 0; j < g.k; ++j) {
          float* __restrict__ a = acc + (i * g.k + j) * g.c;
          const int64_t lo = std::max<int64_t>(0, pad - j);
          const int64_t hi = std::min<int64_t>(g.wo, g.w + pad - j);
          if (g.c % kLanes == 0) {  // each channel vector summed over the row in a register
            for (int64_t ch = 0; ch < g.c; ch += kLanes) {
              Vec sum = V(a + ch);
              for (int64_t xo = lo; xo < hi; ++xo) {
                sum += V(xrow + (xo + j - pad) * g.c + ch) * V(grow + xo * g.c + ch);
              }
              V(a + ch) = sum;
            }
            continue;
          }
          for (int64_t xo = lo; xo < hi; ++xo) {
            const float* __restrict__ xs = xrow + (xo + j - pad) * g.c;
            const float* __restrict__ gs = grow + xo * g.c;
            for (int64_t ch = 0; ch < g.c; ++ch) a[ch] += xs[ch] * gs[ch];
          }
        }
      }
    }
  });
  hfa::SumChunks(partial.data(), g.models, chunks, kkc, out);
  return ffi::Error::Success();
}

}  // namespace

// Both handlers take (thread pool; two float32 buffers; one result; attribute `pad`).
static auto Binding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Ret<ffi::Buffer<ffi::F32>>()
      .Attr<int64_t>("pad");
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaDepthwiseForward, Forward, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaDepthwiseWeightGrad, WeightGrad, Binding());
