// The float vector type of the native CPU kernels: as wide as the machine's widest float
// registers (AVX-512 16 lanes, AVX or NEON 8, else 4), loads and stores without alignment.
#ifndef HFA_JAX_KERNELS_VEC_H_
#define HFA_JAX_KERNELS_VEC_H_

namespace hfa {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__) || defined(__ARM_NEON)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float)), aligned(sizeof(float))));

// The kLanes floats from p on, as one vector.
inline const Vec& V(const float* p) { return *reinterpret_cast<const Vec*>(p); }
inline Vec& V(float* p) { return *reinterpret_cast<Vec*>(p); }

}  // namespace hfa

#endif  // HFA_JAX_KERNELS_VEC_H_
