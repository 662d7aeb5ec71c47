// parallel_for over independent work items (chains, queries) with a fixed number of threads.
// Items are handed out dynamically, one at a time; each item's result depends only on its index,
// so the split never affects results, only speed. OpenMP where the compiler has it (a pooled
// runtime), std::thread otherwise. A call run through interrupt.hpp can be stopped between items
// (StopToken): its loops then skip the items left and throw Interrupted. An item that throws (a
// std::bad_alloc in a k-d tree's build) makes the loop skip the items left and rethrow the first
// exception on the calling thread: an exception must not leave an OpenMP region or a thread, where
// it would end the process (std::terminate) instead of becoming a Python error.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pyvi {

/// A request to stop the parallel loops of one call (interrupt.hpp sets it on Ctrl-C).
struct StopToken {
  std::atomic<bool> requested{false};
};

/// What a parallel loop of a call asked to stop throws once its items are done or skipped, on the
/// thread that started it, so that no code after an interrupted loop runs on its partial results.
struct Interrupted {};

namespace detail {
/// The stop token of the call this thread works for (null: none, the loops run to the end).
inline thread_local StopToken* current_stop = nullptr;
}  // namespace detail

/// While it lives, the loops this thread starts honour `token` (or none, for nullptr).
class StopScope {
 public:
  explicit StopScope(StopToken* token) : previous_(detail::current_stop) { detail::current_stop = token; }
  ~StopScope() { detail::current_stop = previous_; }
  StopScope(const StopScope&) = delete;
  StopScope& operator=(const StopScope&) = delete;

 private:
  StopToken* previous_;
};

namespace detail {
/// `body` for a loop of a stoppable call: items after a stop request are skipped, and the items
/// run without a token (a loop nested in an item never throws from inside this one).
template <class F>
auto stoppable(StopToken* stop, F& body) {
  return [stop, &body](int64_t i) {
    if (stop->requested.load(std::memory_order_relaxed)) return;
    StopScope none(nullptr);
    body(i);
  };
}

/// The first exception a loop's items threw (see the top of this file): guard(body) runs an item
/// unless an earlier one failed and keeps its exception; rethrow() throws it on the calling thread.
class FirstError {
 public:
  template <class F>
  auto guard(F& body) {
    return [this, &body](int64_t i) {
      if (failed_.load(std::memory_order_relaxed)) return;
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    };
  }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr error_;
};

}  // namespace detail

/// Threads to use when the caller says 0 ("all cores").
inline int resolve_threads(int requested, int64_t items) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(1, n);
  return static_cast<int>(std::min<int64_t>(n, std::max<int64_t>(items, 1)));
}

template <class F>
void parallel_for_all(int64_t num_items, int num_threads, F&& body) {
  const int threads = resolve_threads(num_threads, num_items);
  if (threads == 1) {
    for (int64_t i = 0; i < num_items; ++i) body(i);
    return;
  }
  detail::FirstError first;
  auto item = first.guard(body);
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < num_items; ++i) item(i);
#else
  std::atomic<int64_t> next{0};
  auto worker = [&]() {
    for (int64_t i = next.fetch_add(1); i < num_items; i = next.fetch_add(1)) item(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
#endif
  first.rethrow();
}

/// body(i) for every i < num_items over num_threads threads (0: all cores). In a call that can be
/// stopped (a StopScope on this thread), items after a stop request are skipped and Interrupted is
/// thrown at the end.
template <class F>
void parallel_for(int64_t num_items, int num_threads, F&& body) {
  StopToken* const stop = detail::current_stop;
  if (stop == nullptr) return parallel_for_all(num_items, num_threads, body);
  parallel_for_all(num_items, num_threads, detail::stoppable(stop, body));
  if (stop->requested.load()) throw Interrupted{};
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
void parallel_for_elastic_all(int64_t num_items, int num_threads, F&& body) {
  const int threads = resolve_threads(num_threads, num_items);
  if (threads == 1) {
    for (int64_t i = 0; i < num_items; ++i) body(i);
    return;
  }
  detail::FirstError first;
  auto item = first.guard(body);
  if (!detail::ElasticPool::instance().run(num_items, threads - 1, item))
    for (int64_t i = 0; i < num_items; ++i) item(i);
  first.rethrow();
}

/// parallel_for_elastic_all, stoppable as parallel_for is.
template <class F>
void parallel_for_elastic(int64_t num_items, int num_threads, F&& body) {
  StopToken* const stop = detail::current_stop;
  if (stop == nullptr) return parallel_for_elastic_all(num_items, num_threads, body);
  auto items = detail::stoppable(stop, body);
  parallel_for_elastic_all(num_items, num_threads, items);
  if (stop->requested.load()) throw Interrupted{};
}

}  // namespace pyvi
