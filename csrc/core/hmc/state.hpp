// The records of the HMC sampler: a chain's state, what one transition did, and a run's settings.
//
// The shape of blackjax's HMCState / HMCInfo: a transition maps (random stream, state) to
// (state, info); the adaptation is fed the info, the driver records state and info as a draw.
// pyvi/_numba/hmc/state.py holds the Numba twins, one row per lane.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

namespace pyvi::hmc {

/// Size of the cache line that two threads must not both write (false sharing).
constexpr std::size_t kCacheLine = 64;

/// An allocator of whole cache lines: two buffers never share one. A chain's state is written at
/// every transition by the thread that runs its group, and the groups of a run are allocated
/// together and may run on any thread in each chunk of iterations.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = (n * sizeof(T) + kCacheLine - 1) / kCacheLine * kCacheLine;
    return static_cast<T*>(::operator new(bytes, std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

/// A chain's vector of dim values (position, momentum, gradient), in cache lines of its own.
using Buffer = std::vector<double, CacheLineAllocator<double>>;

/// A chain's position with the log density and its gradient there (blackjax's HMCState).
struct State {
  Buffer x, grad;
  double log_prob = 0.0;

  explicit State(int64_t dim) : x(dim), grad(dim) {}

  /// Exchanges the buffers (what accepting a proposal does), without the moves of std::swap.
  friend void swap(State& a, State& b) noexcept {
    a.x.swap(b.x);
    a.grad.swap(b.grad);
    std::swap(a.log_prob, b.log_prob);
  }
};

/// What one transition did (blackjax's HMCInfo): fed to the adaptation, recorded with the draw.
struct Info {
  double accept_prob = 0.0;   // min(1, exp(-energy_error))
  double energy_error = 0.0;  // H(end) - H(start); +inf when it overflowed or was NaN
  bool divergent = false;     // energy_error > max_energy_error
  int64_t num_steps = 0;      // leapfrog steps taken
};

/// The transition's fixed parameters (the step size is per chain: the adaptation tunes it).
struct KernelSettings {
  int64_t num_steps;        // L, or its maximum when random_steps
  bool random_steps;        // L ~ Uniform{1, ..., num_steps} at each transition
  double max_energy_error;  // a transition whose energy error exceeds this is divergent
};

/// One run's settings (validated at the binding boundary).
struct Settings {
  int64_t num_samples;
  int64_t num_warmup;
  double step_size;  // the initial one when adapting
  KernelSettings kernel;
  bool adapt_step_size;  // dual averaging during warm-up
  double target_accept;  // dual averaging's delta
  uint64_t seed;
};

}  // namespace pyvi::hmc
