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
#include <condition_variable>
#include <cstdint>
#include <mutex>
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

namespace detail {

/// The helper threads behind parallel_for_elastic: created on first use, then parked on a
/// condition variable between calls (never destroyed, so nothing happens at interpreter exit).
class ElasticPool {
 public:
  static ElasticPool& instance() {
    static ElasticPool* pool = new ElasticPool();
    return *pool;
  }

  /// Runs body(i) for every i < num_items on the calling thread and on up to `helpers` helpers
  /// that join while items remain. Returns false (nothing run) when another call holds the pool.
  template <class F>
  bool run(int64_t num_items, int helpers, F& body) {
    std::unique_lock<std::mutex> exclusive(run_mutex_, std::try_to_lock);
    if (!exclusive.owns_lock()) return false;
    std::atomic<int64_t> next{0};
    auto work = [&]() {
      for (int64_t i = next.fetch_add(1); i < num_items; i = next.fetch_add(1)) body(i);
    };
    Job job{helpers, 0, [](void* w) { (*static_cast<decltype(work)*>(w))(); }, &work};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_) < helpers) {
        std::thread(&ElasticPool::loop, this).detach();
        ++threads_;
      }
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
    work();
    // No helper may join from here on; wait for those that did to finish their items.
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = nullptr;
    left_.wait(lock, [&] { return active_ == 0; });
    return true;
  }

 private:
  struct Job {
    int helpers, joined;
    void (*call)(void*);
    void* work;
  };

  void loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      Job* job = job_;
      if (job == nullptr || job->joined >= job->helpers) continue;
      ++job->joined;
      ++active_;
      lock.unlock();
      job->call(job->work);
      lock.lock();
      --active_;
      left_.notify_all();
    }
  }

  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, left_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  int active_ = 0;
  size_t threads_ = 0;
};

}  // namespace detail

/// parallel_for for short parallel phases on a machine that other processes share: the calling
/// thread starts on the items at once and helpers join as they wake, and the call waits only for
/// items a helper has claimed, never for a helper that has not woken up. (With a fork-join team,
/// a helper whose core is busy with another process can delay every phase by a scheduler tick,
/// which made two threads several times slower than one on a loaded 2-core machine.) Each item
/// still runs exactly once, so results depend on the index only, never on the threads.
template <class F>
void parallel_for_elastic(int64_t num_items, int num_threads, F&& body) {
  const int threads = resolve_threads(num_threads, num_items);
  if (threads == 1 || !detail::ElasticPool::instance().run(num_items, threads - 1, body))
    for (int64_t i = 0; i < num_items; ++i) body(i);
}

}  // namespace pyvi
