// The direct convolution's inner loops, shared by conv_forward_cpu.cc and stem_cpu.cc: an
// image copied into a zero-padded buffer, then each output row's positions computed with the
// output channels as vector lanes (see conv_forward_cpu.cc).
#ifndef HFA_JAX_KERNELS_DIRECT_CONV_H_
#define HFA_JAX_KERNELS_DIRECT_CONV_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "vec.h"

namespace hfa {

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
inline void Row(const float* xp, const float* w, const Geometry& g, int64_t yo, int64_t co,
                float* row) {
  constexpr int kP = MaxPositions(NV);
  const int64_t valid = std::min<int64_t>(NV * kLanes, g.cout - co);
  const float* in = xp + g.stride * yo * g.wp * g.cin;
  float* out = row + co;
  for (int64_t xo = 0; xo < g.wo; xo += kP) {
    const int n = static_cast<int>(std::min<int64_t>(kP, g.wo - xo));
    Positions<NV>(n, in + g.stride * xo * g.cin, w + co, g, out + xo * g.cout, valid);
  }
}

// Row<NV> for the vectors of channels from co on (1-4; more channels: blocks of 4).
inline void RowBlock(const float* xp, const float* w, const Geometry& g, int64_t yo, int64_t co,
                     float* row) {
  switch (std::min<int64_t>(4, (g.cout - co + kLanes - 1) / kLanes)) {
    case 1: Row<1>(xp, w, g, yo, co, row); break;
    case 2: Row<2>(xp, w, g, yo, co, row); break;
    case 3: Row<3>(xp, w, g, yo, co, row); break;
    default: Row<4>(xp, w, g, yo, co, row); break;
  }
}

// Output row yo (all its channels) into row (Wo x Cout).
inline void ConvRow(const float* xp, const float* w, const Geometry& g, int64_t yo, float* row) {
  for (int64_t co = 0; co < g.cout; co += 4 * kLanes) RowBlock(xp, w, g, yo, co, row);
}

// x (H, W, Cin) into buf, zero-padded to (Hp, Wp, Cin).
inline void PadImage(const float* x, const Geometry& g, std::vector<float>& buf) {
  buf.assign(g.hp * g.wp * g.cin, 0.0f);
  for (int64_t r = 0; r < g.h; ++r) {
    std::memcpy(buf.data() + ((r + g.pad) * g.wp + g.pad) * g.cin, x + r * g.w * g.cin,
                sizeof(float) * g.w * g.cin);
  }
}

// Weights (models, taps, Cout) whose rows are not whole vectors, copied into rows of coutp
// (zeros after Cout) in `padded`; returns the weights to use.
inline const float* PaddedWeights(const float* w, int64_t models, int64_t taps, const Geometry& g,
                                  std::vector<float>& padded) {
  if (g.coutp == g.cout) return w;
  padded.assign(models * taps * g.coutp, 0.0f);
  for (int64_t r = 0; r < models * taps; ++r) {
    std::memcpy(padded.data() + r * g.coutp, w + r * g.cout, sizeof(float) * g.cout);
  }
  return padded.data();
}

// dw[i, t0 + r, co..] += sum over the image's positions of xp[(yo + i) * row + xo * cin + t0 + r]
// * gu[(yo * wo + xo) * c + co..] for r < R (the taps of window row i flattened with Cin).
template <int R, int NV>
inline void Accumulate(const float* xp, const float* gu, const Geometry& g, int64_t i, int64_t t0,
                int64_t co, float* dw) {
  Vec acc[R][NV] = {};
  const int64_t row = g.wp * g.cin;
  for (int64_t yo = 0; yo < g.ho; ++yo) {
    const float* x0 = xp + (yo + i) * row + t0;
    const float* g0 = gu + yo * g.wo * g.cout + co;
    for (int64_t xo = 0; xo < g.wo; ++xo) {
      Vec gv[NV];
      for (int v = 0; v < NV; ++v) gv[v] = hfa::V(g0 + xo * g.cout + v * kLanes);
      const float* xr = x0 + xo * g.cin;
      for (int r = 0; r < R; ++r) {
        const float xb = xr[r];
        for (int v = 0; v < NV; ++v) acc[r][v] += xb * gv[v];
      }
    }
  }
  const int64_t run = g.k * g.cin;
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) hfa::V(dw + ((i * run + t0 + r) * g.cout) + co + v * kLanes) += acc[r][v];
  }
}

// Flattened taps per register block of NV vectors (accumulators TapRows(NV) * NV).
constexpr int TapRows(int nv) { return nv == 1 ? 12 : nv == 2 ? 8 : 6; }

template <int NV, int R = TapRows(NV)>
inline void AccumulateRows(int rows, const float* xp, const float* gu, const Geometry& g, int64_t i,
                    int64_t t0, int64_t co, float* dw) {
  if constexpr (R > 0) {
    if (rows == R) {
      Accumulate<R, NV>(xp, gu, g, i, t0, co, dw);
    } else {
      AccumulateRows<NV, R - 1>(rows, xp, gu, g, i, t0, co, dw);
    }
  }
}

// Accumulate over window row i's taps (k*Cin) in blocks of TapRows(NV), for channels co on.
template <int NV>
inline void TapBlocks(const float* xp, const float* gu, const Geometry& g, int64_t i, int64_t co,
                      float* dw) {
  const int64_t run = g.k * g.cin;
  for (int64_t t0 = 0; t0 < run; t0 += TapRows(NV)) {
    const int rows = static_cast<int>(std::min<int64_t>(TapRows(NV), run - t0));
    AccumulateRows<NV>(rows, xp, gu, g, i, t0, co, dw);
  }
}

// dw (k, k, Cin, Cout) += the weight gradient of one image (stride 1): xp its zero-padded input
// (PadImage), gimg its output gradient (Ho, Wo, Cout), Cout a multiple of kLanes. Each block of
// window-row taps (flattened with Cin: contiguous in xp) and output-channel vectors sums over
// all the image's positions in registers.
inline void WeightGradImage(const float* xp, const float* gimg, const Geometry& g, float* dw) {
  const int64_t run = g.k * g.cin;
  for (int64_t i = 0; i < g.k; ++i) {
    for (int64_t co = 0; co < g.cout; co += 4 * kLanes) {
      switch (std::min<int64_t>(4, (g.cout - co) / kLanes)) {
        case 1: TapBlocks<1>(xp, gimg, g, i, co, dw); break;
        case 2: TapBlocks<2>(xp, gimg, g, i, co, dw); break;
        case 3: TapBlocks<3>(xp, gimg, g, i, co, dw); break;
        default: TapBlocks<4>(xp, gimg, g, i, co, dw); break;
      }
    }
  }
}

}  // namespace hfa

#endif  // HFA_JAX_KERNELS_DIRECT_CONV_H_
