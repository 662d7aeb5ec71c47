// A barrier for the processes of one machine that share a block of memory (pyvi._process_barrier).
//
// Between processes of one machine gloo's barrier (a one-value all-reduce over TCP loopback) costs
// ~0.2 ms; pyvi's sharded data-parallel step takes two per step of ~4 ms (issue 14). Here each
// process owns one word of a shared block, on its own cache line: arriving at barrier number g
// stores g there (release), and waiting reads every word until all have reached g (acquire), so
// whatever a process wrote before it arrived is visible to every process once the barrier opens.
// A waiter spins for a while (a step's processes arrive within a few hundred microseconds of each
// other), then sleeps on a futex: the shared `wake` word, which every arrival increments and wakes.
// Words are compared as differences (int32 wrap-around), so generations may count forever.
//
// The wait runs in slices and returns after one (kSliceElapsed) so that the caller can check for
// a failed peer between slices; a peer that failed sets the abort word (kAborted).
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace pyvi::barrier {

/// int32 words between two processes' words: 64 bytes, one cache line each.
constexpr int kStride = 16;
/// Processes one block serves (words 0 .. kMaxProcesses - 1 ranks, then wake and abort).
constexpr int kMaxProcesses = 64;
constexpr int kWake = kMaxProcesses * kStride;
constexpr int kAbort = kWake + kStride;
/// The block's size in int32 words.
constexpr int kWords = kAbort + kStride;

enum Status : int { kOpen = 0, kAborted = 1, kSliceElapsed = 2 };

inline int32_t load(const int32_t* word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

inline void wake_all(int32_t* word) {
#if defined(__linux__)
  // Not FUTEX_PRIVATE: the word is shared between processes.
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

/// Sleeps while *word == expected, at most `nanoseconds` (or returns at once if it changed).
inline void sleep_on(int32_t* word, int32_t expected, int64_t nanoseconds) {
#if defined(__linux__)
  timespec timeout{static_cast<time_t>(nanoseconds / 1000000000), static_cast<long>(nanoseconds % 1000000000)};
  syscall(SYS_futex, word, FUTEX_WAIT, expected, &timeout, nullptr, 0);
#else
  (void)word, (void)expected;
  std::this_thread::sleep_for(std::chrono::nanoseconds(nanoseconds < 200000 ? nanoseconds : 200000));
#endif
}

/// Process `rank` arrives at barrier number `generation`.
inline void arrive(int32_t* block, int rank, int32_t generation) {
  __atomic_store_n(block + rank * kStride, generation, __ATOMIC_RELEASE);
  __atomic_fetch_add(block + kWake, 1, __ATOMIC_ACQ_REL);
  wake_all(block + kWake);
}

inline bool all_arrived(const int32_t* block, int world_size, int32_t generation) {
  for (int r = 0; r < world_size; ++r)
    if (static_cast<int32_t>(static_cast<uint32_t>(load(block + r * kStride)) - static_cast<uint32_t>(generation)) < 0)
      return false;
  return true;
}

inline void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Waits until every process has arrived at `generation` (kOpen), a peer aborted (kAborted) or
/// `slice_ns` passed (kSliceElapsed); spins for the first `spin_ns`, then sleeps on the futex.
inline Status wait(int32_t* block, int world_size, int32_t generation, int64_t spin_ns, int64_t slice_ns) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (;;) {
    const int32_t seen = load(block + kWake);
    if (all_arrived(block, world_size, generation)) return kOpen;
    if (load(block + kAbort) != 0) return kAborted;
    const int64_t elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - start).count();
    if (elapsed >= slice_ns) return kSliceElapsed;
    if (elapsed < spin_ns) {
      for (int i = 0; i < 64; ++i) pause();
      std::this_thread::yield();  // more processes than cores: let the one being waited for run
    } else {
      sleep_on(block + kWake, seen, slice_ns - elapsed);
    }
  }
}

/// Sets the abort word and wakes every waiter.
inline void abort(int32_t* block) {
  __atomic_store_n(block + kAbort, 1, __ATOMIC_RELEASE);
  __atomic_fetch_add(block + kWake, 1, __ATOMIC_ACQ_REL);
  wake_all(block + kWake);
}

}  // namespace pyvi::barrier
