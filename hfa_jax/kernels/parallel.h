// ParallelFor on XLA's intra-op thread pool and the in-order sum of per-chunk partial
// results, shared by the native CPU kernels.
#ifndef HFA_JAX_KERNELS_PARALLEL_H_
#define HFA_JAX_KERNELS_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstring>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "xla/ffi/api/ffi.h"

namespace hfa {

// Runs fn(0..n-1) on the calling thread and on XLA's intra-op pool. The caller works too and
// waits only for tasks already started, so a busy pool cannot deadlock it.
struct ParallelState {
  explicit ParallelState(int64_t n, std::function<void(int64_t)> fn) : n(n), fn(std::move(fn)) {}
  const int64_t n;
  const std::function<void(int64_t)> fn;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;

  void Work() {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      fn(i);
      if (done.fetch_add(1) + 1 == n) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  }
};

inline void ParallelFor(xla::ffi::ThreadPool& pool, int64_t n, std::function<void(int64_t)> fn) {
  if (n <= 0) return;
  auto state = std::make_shared<ParallelState>(n, std::move(fn));
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), n - 1);
  for (int64_t t = 0; t < helpers; ++t) {
    pool.Schedule([state] { state->Work(); });
  }
  state->Work();
  std::unique_lock<std::mutex> lock(state->mutex);
  state->finished.wait(lock, [&] { return state->done.load() == n; });
}

// out[m] = sum over c of partial[m][c] for models m, chunks c of `size` floats each, added in
// chunk order: the result does not depend on which thread computed which chunk.
inline void SumChunks(const float* partial, int64_t models, int64_t chunks, int64_t size,
                      float* out) {
  for (int64_t m = 0; m < models; ++m) {
    float* o = out + m * size;
    std::memcpy(o, partial + m * chunks * size, sizeof(float) * size);
    for (int64_t chunk = 1; chunk < chunks; ++chunk) {
      const float* p = partial + (m * chunks + chunk) * size;
      for (int64_t i = 0; i < size; ++i) o[i] += p[i];
    }
  }
}

}  // namespace hfa

#endif  // HFA_JAX_KERNELS_PARALLEL_H_
