// parallel_for over independent work items (chains, queries) with a fixed number of threads.
// Items are handed out dynamically, one at a time; each item's result depends only on its index,
// so the split never affects results, only speed. OpenMP where the compiler has it (a pooled
// runtime), std::thread otherwise.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace pyvi {

/// Threads to use when the caller says 0 ("all cores").
inline int resolve_threads(int requested, int64_t items) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(1, n);
  return static_cast<int>(std::min<int64_t>(n, std::max<int64_t>(items, 1)));
}

template <class F>
void parallel_for(int64_t num_items, int num_threads, F&& body) {
  const int threads = resolve_threads(num_threads, num_items);
  if (threads == 1) {
    for (int64_t i = 0; i < num_items; ++i) body(i);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < num_items; ++i) body(i);
#else
  std::atomic<int64_t> next{0};
  auto worker = [&]() {
    for (int64_t i = next.fetch_add(1); i < num_items; i = next.fetch_add(1)) body(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
#endif
}

}  // namespace pyvi
