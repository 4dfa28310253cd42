// Weight gradient of a dense k x k convolution (stride s, symmetric zero padding p) for
// XLA:CPU, NHWC float32:
//
//   hfa_conv_weight_grad: x (L, B, H, W, Cin), g (L, B, Ho, Wo, Cout) -> dw (L, k, k, Cin, Cout)
//
//   dw[m, i, j, ci, co] = sum_{b, yo, xo} x[m, b, s*yo + i - p, s*xo + j - p, ci] * g[m, b, yo, xo, co]
//
// with L any number of leading "model" dimensions (the folds under jax.vmap). XLA:CPU computes
// this gradient 2-4x below its forward convolution's speed when the channels are few and the
// maps large (HFA-Net's stem and RMT patch embedding at 112 px). Here each output row's input
// rows stay in cache while all k*k taps are accumulated into registers (an outer product
// over a block of Cin rows and Cout vectors). Rows are split into a fixed number of chunks
// per model, each with its own partial sum, added in order: the result does not depend on
// the number of threads.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "direct_conv.h"
#include "parallel.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using hfa::kLanes;
using hfa::ParallelFor;
using hfa::Vec;

namespace {

// Cin rows per register block: with AVX-512 8 x 2 vectors = 16 accumulators.
constexpr int kRows = kLanes == 16 ? 8 : 6;

struct Geometry {
  int64_t models, batch, h, w, cin, ho, wo, cout, k;
};

// A run of output positions of one row for one tap (i, j): n positions whose inputs start at
// x (stepping stride * Cin) and whose gradients start at g (stepping Cout).
struct Run {
  const float* x;
  const float* g;
  int64_t n;
};

// acc[R x Cout block] += sum over the runs of X^T G, X the R input channels from c0 on and G
// the NV vectors of gradients from co on. The R x NV sums stay in registers over all runs.
template <int R, int NV>
inline void OuterProduct(const Run* runs, int count, int64_t xstep, int64_t gstep, int64_t c0,
                         int64_t co, float* acc, int64_t ld) {
  Vec sum[R][NV] = {};
  for (int s = 0; s < count; ++s) {
    const float* x0 = runs[s].x + c0;
    const float* g0 = runs[s].g + co;
    for (int64_t t = 0; t < runs[s].n; ++t) {
      const float* xr = x0 + t * xstep;
      const Vec* gr = reinterpret_cast<const Vec*>(g0 + t * gstep);
      Vec gv[NV];
      for (int v = 0; v < NV; ++v) gv[v] = gr[v];
      for (int r = 0; r < R; ++r) {
        const float xb = xr[r];
        for (int v = 0; v < NV; ++v) sum[r][v] += xb * gv[v];
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    Vec* out = reinterpret_cast<Vec*>(acc + r * ld);
    for (int v = 0; v < NV; ++v) out[v] += sum[r][v];
  }
}

// OuterProduct for `rows` (1..kRows) input channels, a compile-time count chosen at run time.
template <int NV, int R = kRows>
inline void RowBlock(const Run* runs, int count, int64_t xstep, int64_t gstep, int64_t c0,
                     int64_t co, int rows, float* acc, int64_t ld) {
  if constexpr (R > 0) {
    if (rows == R) {
      OuterProduct<R, NV>(runs, count, xstep, gstep, c0, co, acc, ld);
    } else {
      RowBlock<NV, R - 1>(runs, count, xstep, gstep, c0, co, rows, acc, ld);
    }
  }
}

// The output channels that do not fill a vector (scalar code).
inline void OuterProductScalar(const Run* runs, int count, int64_t xstep, int64_t gstep,
                               int64_t c0, int64_t co, int rows, int cols, float* acc,
                               int64_t ld) {
  for (int s = 0; s < count; ++s) {
    for (int64_t t = 0; t < runs[s].n; ++t) {
      const float* xr = runs[s].x + c0 + t * xstep;
      const float* gr = runs[s].g + co + t * gstep;
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols; ++c) acc[r * ld + c] += xr[r] * gr[c];
      }
    }
  }
}

constexpr int kMaxRuns = 64;

// Stride 1 with fewer input channels than a register block (STSTNet's, SSSNet's, RCN-A's 3,
// OFF-ApexNet's 2 and 6): each image zero-padded, the taps of a window row flattened with
// Cin (contiguous there) as the register block's rows (direct_conv.h's WeightGradImage).
// Images split into a fixed number of chunks per model, summed in order.
void SmallCinWeightGrad(ffi::ThreadPool& pool, const float* x, const float* gy, float* out,
                    const Geometry& geo, int64_t pad) {
  hfa::Geometry g{geo.h, geo.w, geo.cin, geo.ho, geo.wo, geo.cout, geo.k, 1, pad,
                  geo.h + 2 * pad, geo.w + 2 * pad, geo.cout};
  const int64_t size = geo.k * geo.k * geo.cin * geo.cout;
  const int64_t chunks = std::clamp<int64_t>((8 + geo.models - 1) / geo.models, 1, geo.batch);
  const int64_t in_size = geo.h * geo.w * geo.cin, out_size = geo.ho * geo.wo * geo.cout;
  std::vector<float> partial(geo.models * chunks * size, 0.0f);
  ParallelFor(pool, geo.models * chunks, [&](int64_t task) {
    thread_local std::vector<float> buf;
    const int64_t m = task / chunks, chunk = task % chunks;
    for (int64_t n = geo.batch * chunk / chunks; n < geo.batch * (chunk + 1) / chunks; ++n) {
      const int64_t image = m * geo.batch + n;
      hfa::PadImage(x + image * in_size, g, buf);
      hfa::WeightGradImage(buf.data(), gy + image * out_size, g, partial.data() + task * size);
    }
  });
  hfa::SumChunks(partial.data(), geo.models, chunks, size, out);
}

// Accumulates output rows [begin, end) (row index over images and output rows) into
// acc (k, k, Cin, Cout); at most kMaxRuns rows at a time.
void AccumulateRows(const float* x, const float* g, float* acc, const Geometry& geo,
                    int64_t stride, int64_t pad, int64_t begin, int64_t end) {
  const int64_t cin = geo.cin, cout = geo.cout, k = geo.k;
  const int64_t xstep = stride * cin, gstep = cout;
  Run runs[kMaxRuns];
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      // Output columns xo whose input column stride * xo + j - pad lies inside the image.
      const int64_t lo = std::max<int64_t>(0, (pad - j + stride - 1) / stride);
      const int64_t hi = std::min<int64_t>(geo.wo, (geo.w - 1 + pad - j) / stride + 1);
      if (hi <= lo) continue;
      int count = 0;
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / geo.ho, yo = r % geo.ho;
        const int64_t yi = stride * yo + i - pad;
        if (yi < 0 || yi >= geo.h) continue;
        runs[count++] = Run{x + ((n * geo.h + yi) * geo.w + stride * lo + j - pad) * cin,
                            g + ((n * geo.ho + yo) * geo.wo + lo) * cout, hi - lo};
      }
      if (count == 0) continue;
      float* tap = acc + (i * k + j) * cin * cout;
      for (int64_t c0 = 0; c0 < cin; c0 += kRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kRows, cin - c0));
        float* block = tap + c0 * cout;
        int64_t co = 0;
        for (; co + 2 * kLanes <= cout; co += 2 * kLanes) {
          RowBlock<2>(runs, count, xstep, gstep, c0, co, rows, block + co, cout);
        }
        for (; co + kLanes <= cout; co += kLanes) {
          RowBlock<1>(runs, count, xstep, gstep, c0, co, rows, block + co, cout);
        }
        if (co < cout) {
          OuterProductScalar(runs, count, xstep, gstep, c0, co, rows,
                             static_cast<int>(cout - co), block + co, cout);
        }
      }
    }
  }
}

ffi::Error WeightGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> gy,
                      ffi::ResultBuffer<ffi::F32> dw, int64_t stride, int64_t pad) {
  auto xd = x.dimensions();
  auto gd = gy.dimensions();
  auto wd = dw->dimensions();
  if (xd.size() < 4 || gd.size() != xd.size() || wd.size() != xd.size()) {
    return ffi::Error::InvalidArgument(
        "conv_weight_grad: x (..., B, H, W, Cin), g (..., B, Ho, Wo, Cout), dw (..., k, k, Cin, Cout)");
  }
  const size_t lead = xd.size() - 4;
  int64_t models = 1;
  for (size_t i = 0; i < lead; ++i) {
    if (xd[i] != gd[i] || xd[i] != wd[i]) {
      return ffi::Error::InvalidArgument("conv_weight_grad: leading dims differ");
    }
    models *= xd[i];
  }
  Geometry geo{models, xd[lead], xd[lead + 1], xd[lead + 2], xd[lead + 3],
               gd[lead + 1], gd[lead + 2], gd[lead + 3], wd[lead]};
  if (gd[lead] != geo.batch || wd[lead + 1] != geo.k || wd[lead + 2] != geo.cin ||
      wd[lead + 3] != geo.cout || stride < 1 || pad < 0 ||
      geo.ho != (geo.h + 2 * pad - geo.k) / stride + 1 ||
      geo.wo != (geo.w + 2 * pad - geo.k) / stride + 1) {
    return ffi::Error::InvalidArgument("conv_weight_grad: shapes do not match stride and pad");
  }
  const float* xp = x.typed_data();
  const float* gp = gy.typed_data();
  float* out = dw->typed_data();
  if (stride == 1 && geo.cin < kRows && geo.cout % kLanes == 0) {
    SmallCinWeightGrad(pool, xp, gp, out, geo, pad);
    return ffi::Error::Success();
  }
  const int64_t size = geo.k * geo.k * geo.cin * geo.cout;
  const int64_t rows = geo.batch * geo.ho;
  // An even number of chunks per model, up to 16, fewer when the partial sums would exceed
  // ~16 MB in all (large Cin x Cout come with small maps, where each chunk has much work).
  // Several models with such large sums (a Linear layer of many inputs over few rows, the
  // folds stacked) take one chunk each, summed straight into the output: the models are the
  // parallel work, and per-chunk partial sums would cost more memory traffic than the sums.
  const int64_t budget = (int64_t{4} << 20) / std::max<int64_t>(1, size * models);
  const int64_t chunks =
      models > 1 && budget < 2
          ? 1
          : std::clamp<int64_t>(2 * std::clamp<int64_t>(budget / 2, 1, 8), 1, rows);
  std::vector<float> partial(chunks > 1 ? models * chunks * size : 0, 0.0f);
  float* sums = chunks > 1 ? partial.data() : out;
  ParallelFor(pool, models * chunks, [&](int64_t task) {
    const int64_t m = task / chunks, chunk = task % chunks;
    float* acc = sums + task * size;
    if (chunks == 1) std::fill(acc, acc + size, 0.0f);
    const int64_t begin = rows * chunk / chunks, end = rows * (chunk + 1) / chunks;
    // Enough rows per pass that the registers sum over >= 64 positions before touching acc.
    const int64_t group = std::clamp<int64_t>((64 + geo.wo - 1) / geo.wo, 1, kMaxRuns);
    const int64_t offset = m * rows;              // this model's first row over models * batch
    for (int64_t r = begin; r < end; r += group) {
      AccumulateRows(xp, gp, acc, geo, stride, pad, offset + r, offset + std::min(end, r + group));
    }
  });
  if (chunks > 1) hfa::SumChunks(partial.data(), models, chunks, size, out);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaConvWeightGrad, WeightGrad,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad"));
