// A network's first stage in training mode as one pass over its largest activation, for
// XLA:CPU, NHWC float32: a k x k convolution with bias of the input (no input gradient),
// ReLU and BatchNorm with the batch's statistics in either order, and a max-pool of disjoint
// windows (kernel = stride q, padding pp):
//
//   relu_first = 1 (STSTNet):  P = maxpool(BN(relu(conv(x) + b)))
//   relu_first = 0 (RCN-A):    P = maxpool(relu(BN(conv(x) + b)))
//
// BatchNorm is an affine map per channel, v -> (v - mean) a + shift with a = scale /
// sqrt(var + eps), monotone in v: a window's maximum after it is the map of the window's
// maximum of v where a >= 0, of its minimum where a < 0 (and ReLU commutes with the maximum
// too). So the forward needs, per window, only the maximum and minimum of v (v = relu(u) or
// u, u = conv(x) + b) and, per channel, the batch's mean and variance of v; the caller maps
// them (ops.stem). The activation itself, (models, B, Hc, Wc, C), is never written:
//
//   hfa_stem_forward: x (L, B, H, W, Cin), w (L, k, k, Cin, C), b (L, C)
//     -> vmax, vmin (L, B, Po, Qo, C), mean, var (L, C)   (biased variance, sums in double)
//
// The backward recomputes u. The output gradient g (L, B, Po, Qo, C) reaches each window's
// first maximum after BatchNorm in row-major order (its first maximum of v where a > 0, first
// minimum where a < 0, its first entry where a = 0), as PyTorch's pool and
// ops.max_pool.max_pool_disjoint give it, and BatchNorm's
// gradient through the batch statistics is, per channel, alpha + beta v at every position
// (the caller computes alpha and beta from pooled sums). So the gradient of u is
//
//   relu_first = 1:  [u > 0] (a g_sel + alpha + beta u)
//   relu_first = 0:  a g_sel [z_sel > 0] + alpha + beta u      (z_sel the window's BN output)
//
// and the kernel sums x's patches times it into the weight and bias gradients:
//
//   hfa_stem_backward: x, w, b, g (L, B, Po, Qo, C), coeffs (L, 5, C): a, mean, shift,
//     alpha, beta -> dw (L, k, k, Cin, C), db (L, C)
//
// C must be a multiple of the vector width. Images are split into a fixed number of chunks
// per model, each with its own partial sums, added in order: the result does not depend on
// the number of threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "direct_conv.h"
#include "parallel.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using hfa::Geometry;
using hfa::kLanes;
using hfa::ParallelFor;
using hfa::Vec;

namespace {

struct Pool {
  int64_t q, pad, po, qo;  // window (= stride), padding, pooled rows and columns
  // Window w's first conv row (or column) and the one after its last, of n.
  int64_t First(int64_t w) const { return std::max<int64_t>(0, w * q - pad); }
  int64_t End(int64_t w, int64_t n) const { return std::min<int64_t>(n, w * q - pad + q); }
};

// A window's first maximum and first minimum of v (relu(v) where relu) lane by lane, lanes
// co.. of rows [r0, r1) and columns [c0, c1) of v (Ho, Wo, C) in row-major order, and with
// kPlaces their places (counting the window's entries from 0; -1 where none, e.g. all NaN).
// A later entry replaces one only where it is strictly above (below): std::max's (std::min's)
// choice, so ties keep the first.
struct Extremes {
  Vec top, bottom, at_top, at_bottom;
};

template <bool kPlaces>
inline Extremes WindowExtremes(const float* v, int64_t wo, int64_t c, int64_t co, int64_t r0,
                               int64_t r1, int64_t c0, int64_t c1, bool relu) {
  Extremes e{Vec{} - std::numeric_limits<float>::infinity(),
             Vec{} + std::numeric_limits<float>::infinity(), Vec{} - 1.0f, Vec{} - 1.0f};
  float k = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t s = c0; s < c1; ++s, k += 1.0f) {
      const Vec u = hfa::V(v + (r * wo + s) * c + co);
      const Vec x = relu ? (u < 0.0f ? Vec{} : u) : u;
      const auto above = x > e.top, below = x < e.bottom;
      e.top = above ? x : e.top;
      e.bottom = below ? x : e.bottom;
      if constexpr (kPlaces) {
        e.at_top = above ? Vec{} + k : e.at_top;
        e.at_bottom = below ? Vec{} + k : e.at_bottom;
      }
    }
  }
  return e;
}

// Images per task: a fixed split of each model's batch (independent of the threads).
int64_t Chunks(int64_t models, int64_t batch) {
  return std::clamp<int64_t>((8 + models - 1) / models, 1, batch);
}

ffi::Error CheckShapes(ffi::Span<const int64_t> xd, ffi::Span<const int64_t> wd,
                       int64_t pad, const Pool& pool, Geometry& g, int64_t& models,
                       int64_t& batch) {
  if (xd.size() < 4 || wd.size() != xd.size()) {
    return ffi::Error::InvalidArgument("stem: x (..., B, H, W, Cin), w (..., k, k, Cin, C)");
  }
  const size_t lead = xd.size() - 4;
  models = 1;
  for (size_t i = 0; i < lead; ++i) {
    if (xd[i] != wd[i]) return ffi::Error::InvalidArgument("stem: leading dims differ");
    models *= xd[i];
  }
  batch = xd[lead];
  const int64_t k = wd[lead], hc = xd[lead + 1] + 2 * pad - k + 1;
  const int64_t wc = xd[lead + 2] + 2 * pad - k + 1;
  g = Geometry{xd[lead + 1], xd[lead + 2], xd[lead + 3], hc, wc, wd[lead + 3], k, 1, pad,
               xd[lead + 1] + 2 * pad, xd[lead + 2] + 2 * pad, wd[lead + 3]};
  if (wd[lead + 1] != k || wd[lead + 2] != g.cin || g.cout % kLanes != 0 || hc < 1 || wc < 1 ||
      pool.q < 1 || pool.pad < 0 || pool.po != (hc + 2 * pool.pad - pool.q) / pool.q + 1 ||
      pool.qo != (wc + 2 * pool.pad - pool.q) / pool.q + 1) {
    return ffi::Error::InvalidArgument("stem: shapes do not match the padding and the pool");
  }
  return ffi::Error::Success();
}

ffi::Error Forward(ffi::ThreadPool threads, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                   ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::F32> vmax,
                   ffi::ResultBuffer<ffi::F32> vmin, ffi::ResultBuffer<ffi::F32> mean,
                   ffi::ResultBuffer<ffi::F32> var, int64_t pad, int64_t pool_size,
                   int64_t pool_pad, int64_t relu_first) {
  Geometry g;
  int64_t models, batch;
  const auto vd = vmax->dimensions();
  if (vd.size() < 2) return ffi::Error::InvalidArgument("stem: pooled output rank");
  Pool pool{pool_size, pool_pad, vd[vd.size() - 3], vd[vd.size() - 2]};
  if (auto e = CheckShapes(x.dimensions(), w.dimensions(), pad, pool, g, models, batch);
      e.failure()) {
    return e;
  }
  const int64_t c = g.cout, chunks = Chunks(models, batch);
  const int64_t in_size = g.h * g.w * g.cin, out_size = pool.po * pool.qo * c;
  const int64_t taps = g.k * g.k * g.cin;
  const float* xs = x.typed_data();
  const float* ws = w.typed_data();
  const float* bs = b.typed_data();
  float* hi = vmax->typed_data();
  float* lo = vmin->typed_data();
  std::vector<double> sums(models * chunks * 2 * c, 0.0);
  ParallelFor(threads, models * chunks, [&](int64_t task) {
    thread_local std::vector<float> buf, v;
    const int64_t m = task / chunks, chunk = task % chunks;
    const float* wm = ws + m * taps * c;
    const float* bias = bs + m * c;
    double* sum = sums.data() + task * 2 * c;
    double* sq = sum + c;
    v.resize(g.ho * g.wo * c);
    std::vector<float> rsum(c), rsq(c);
    for (int64_t n = batch * chunk / chunks; n < batch * (chunk + 1) / chunks; ++n) {
      const int64_t image = m * batch + n;
      hfa::PadImage(xs + image * in_size, g, buf);
      // v, row by row, and each row's sums (added to the chunk's in double).
      for (int64_t yo = 0; yo < g.ho; ++yo) {
        float* row = v.data() + yo * g.wo * c;
        hfa::ConvRow(buf.data(), wm, g, yo, row);
        for (int64_t co = 0; co < c; co += kLanes) {
          const Vec bv = hfa::V(bias + co);
          Vec s1 = {}, s2 = {};
          for (int64_t xo = 0; xo < g.wo; ++xo) {
            Vec& vp = hfa::V(row + xo * c + co);
            const Vec u = vp + bv;
            vp = relu_first ? (u < 0.0f ? Vec{} : u) : u;
            s1 += vp;
            s2 += vp * vp;
          }
          hfa::V(rsum.data() + co) = s1;
          hfa::V(rsq.data() + co) = s2;
        }
        for (int64_t ch = 0; ch < c; ++ch) {
          sum[ch] += rsum[ch];
          sq[ch] += rsq[ch];
        }
      }
      // Each window's maximum and minimum, written once.
      float* pmax = hi + image * out_size;
      float* pmin = lo + image * out_size;
      for (int64_t wr = 0; wr < pool.po; ++wr) {
        const int64_t r0 = pool.First(wr), r1 = pool.End(wr, g.ho);
        for (int64_t wc = 0; wc < pool.qo; ++wc) {
          const int64_t c0 = pool.First(wc), c1 = pool.End(wc, g.wo);
          for (int64_t co = 0; co < c; co += kLanes) {
            const Extremes e = WindowExtremes<false>(v.data(), g.wo, c, co, r0, r1, c0, c1, false);
            hfa::V(pmax + (wr * pool.qo + wc) * c + co) = e.top;
            hfa::V(pmin + (wr * pool.qo + wc) * c + co) = e.bottom;
          }
        }
      }
    }
  });
  const double count = static_cast<double>(batch * g.ho * g.wo);
  for (int64_t m = 0; m < models; ++m) {
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0.0, s2 = 0.0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        s += sums[((m * chunks + chunk) * 2) * c + ch];
        s2 += sums[((m * chunks + chunk) * 2 + 1) * c + ch];
      }
      const double mu = s / count;
      mean->typed_data()[m * c + ch] = static_cast<float>(mu);
      var->typed_data()[m * c + ch] = static_cast<float>(std::max(s2 / count - mu * mu, 0.0));
    }
  }
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool threads, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w,
                    ffi::Buffer<ffi::F32> b, ffi::Buffer<ffi::F32> gp,
                    ffi::Buffer<ffi::F32> coeffs, ffi::ResultBuffer<ffi::F32> dw,
                    ffi::ResultBuffer<ffi::F32> db, int64_t pad, int64_t pool_size,
                    int64_t pool_pad, int64_t relu_first) {
  Geometry g;
  int64_t models, batch;
  const auto gd = gp.dimensions();
  if (gd.size() < 4) return ffi::Error::InvalidArgument("stem: pooled gradient rank");
  Pool pool{pool_size, pool_pad, gd[gd.size() - 3], gd[gd.size() - 2]};
  if (auto e = CheckShapes(x.dimensions(), w.dimensions(), pad, pool, g, models, batch);
      e.failure()) {
    return e;
  }
  const int64_t c = g.cout, chunks = Chunks(models, batch);
  const int64_t in_size = g.h * g.w * g.cin, out_size = pool.po * pool.qo * c;
  const int64_t taps = g.k * g.k * g.cin;
  const float* xs = x.typed_data();
  const float* ws = w.typed_data();
  const float* bs = b.typed_data();
  const float* gs = gp.typed_data();
  const float* cs = coeffs.typed_data();
  std::vector<float> partial(models * chunks * (taps + 1) * c, 0.0f);
  ParallelFor(threads, models * chunks, [&](int64_t task) {
    thread_local std::vector<float> buf, u, gu;
    const int64_t m = task / chunks, chunk = task % chunks;
    const float* wm = ws + m * taps * c;
    const float* bias = bs + m * c;
    const float *a = cs + m * 5 * c, *mu = a + c, *shift = a + 2 * c;
    const float *alpha = a + 3 * c, *beta = a + 4 * c;
    float* dwp = partial.data() + task * (taps + 1) * c;
    float* dbp = dwp + taps * c;
    u.resize(g.ho * g.wo * c);
    gu.resize(g.ho * g.wo * c);
    for (int64_t n = batch * chunk / chunks; n < batch * (chunk + 1) / chunks; ++n) {
      const int64_t image = m * batch + n;
      hfa::PadImage(xs + image * in_size, g, buf);
      for (int64_t yo = 0; yo < g.ho; ++yo) {
        hfa::ConvRow(buf.data(), wm, g, yo, u.data() + yo * g.wo * c);
      }
      // The dense part: BatchNorm's gradient through its batch statistics (and ReLU's mask).
      for (int64_t p = 0; p < g.ho * g.wo; ++p) {
        for (int64_t co = 0; co < c; co += kLanes) {
          Vec& up = hfa::V(u.data() + p * c + co);
          up += hfa::V(bias + co);
          const Vec t = hfa::V(alpha + co) + hfa::V(beta + co) * up;
          hfa::V(gu.data() + p * c + co) = relu_first ? (up > 0.0f ? t : Vec{}) : t;
        }
      }
      // The sparse part: each window's output gradient on its maxima after BatchNorm.
      const float* gimg = gs + image * out_size;
      for (int64_t wr = 0; wr < pool.po; ++wr) {
        const int64_t r0 = pool.First(wr), r1 = pool.End(wr, g.ho);
        for (int64_t wc = 0; wc < pool.qo; ++wc) {
          const int64_t c0 = pool.First(wc), c1 = pool.End(wc, g.wo);
          for (int64_t co = 0; co < c; co += kLanes) {
            const Extremes e =
              WindowExtremes<true>(u.data(), g.wo, c, co, r0, r1, c0, c1, relu_first);
            // BatchNorm's maximum is v's maximum where a > 0, its minimum where a < 0; a = 0
            // maps the window to one value, whose first entry PyTorch's pool takes.
            const Vec av = hfa::V(a + co);
            const Vec selected = av > 0.0f ? e.top : e.bottom;
            const Vec at = av > 0.0f ? e.at_top : (av < 0.0f ? e.at_bottom : Vec{});
            const auto active = relu_first ? (Vec{} == Vec{})
                                           : (selected - hfa::V(mu + co)) * av +
                                                     hfa::V(shift + co) > 0.0f;
            const Vec share = active ? av * hfa::V(gimg + (wr * pool.qo + wc) * c + co) : Vec{};
            float k = 0.0f;  // the entry's place, as WindowExtremes counts it
            for (int64_t r = r0; r < r1; ++r) {
              for (int64_t s = c0; s < c1; ++s, k += 1.0f) {
                const int64_t p = (r * g.wo + s) * c + co;
                const auto open = relu_first ? hfa::V(u.data() + p) > 0.0f : (Vec{} == Vec{});
                hfa::V(gu.data() + p) += (at == k && open) ? share : Vec{};
              }
            }
          }
        }
      }
      // dw += patches^T gu, db += sum gu.
      for (int64_t p = 0; p < g.ho * g.wo; ++p) {
        for (int64_t ch = 0; ch < c; ++ch) dbp[ch] += gu[p * c + ch];
      }
      hfa::WeightGradImage(buf.data(), gu.data(), g, dwp);
    }
  });
  float* dws = dw->typed_data();
  float* dbs = db->typed_data();
  for (int64_t m = 0; m < models; ++m) {
    for (int64_t j = 0; j < (taps + 1) * c; ++j) {
      float s = 0.0f;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        s += partial[(m * chunks + chunk) * (taps + 1) * c + j];
      }
      if (j < taps * c) {
        dws[m * taps * c + j] = s;
      } else {
        dbs[m * c + j - taps * c] = s;
      }
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaStemForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("pad")
                                  .Attr<int64_t>("pool")
                                  .Attr<int64_t>("pool_pad")
                                  .Attr<int64_t>("relu_first"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(HfaStemBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("pad")
                                  .Attr<int64_t>("pool")
                                  .Attr<int64_t>("pool_pad")
                                  .Attr<int64_t>("relu_first"));
