// pyvi._core.HmcRun: an HMC run that Python advances in chunks of iterations.
//
// The sampler (hmc/driver.hpp) keeps every chain's state between chunks; this is its face to
// Python: one class for every target type (the sampler behind a virtual call) and the outputs it
// fills, and the Python target it reads, kept alive here. Each advance releases the GIL for
// its chunk and takes it back at the end, so between two chunks Python reports progress and a
// Ctrl-C (KeyboardInterrupt) stops the run (pyvi/hmc/chunks.py).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "hmc/driver.hpp"
#include "validate.hpp"

namespace pyvi {

class HmcRun {
 public:
  HmcRun(pybind11::dict outputs, const hmc::Draws& draws) : outputs_(std::move(outputs)), draws_(draws) {}
  virtual ~HmcRun() = default;

  virtual int64_t iteration() const = 0;
  virtual int64_t num_iterations() const = 0;

  /// Runs the next `iterations` iterations of every chain (at most what is left of the run) on
  /// `num_threads` threads (0: all cores), without the GIL.
  void advance(int64_t iterations, int num_threads) {
    require_at_least(iterations, 0, "iterations");
    require_at_least(num_threads, 0, "num_threads");
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) fail("this HMC run is already advancing in another thread");
    pybind11::gil_scoped_release release;
    run(iterations, num_threads);
  }

  /// The outputs (a dict keyed by hmc_outputs): draws [0, iteration() - num_warmup) are filled.
  const pybind11::dict& outputs() const { return outputs_; }

  /// Keeps `owner` (the Python target the sampler reads) alive as long as the run.
  void keep_alive(pybind11::object owner) { owner_ = std::move(owner); }

 protected:
  virtual void run(int64_t iterations, int num_threads) = 0;
  const hmc::Draws& draws() const { return draws_; }

 private:
  pybind11::object owner_;  // the target
  pybind11::dict outputs_;  // owns the arrays draws_ points into
  hmc::Draws draws_;
  std::mutex busy_;
};

/// The run of a sampler on a Target. The sampler reads its target by reference: `owned` holds a
/// target made for this run alone (a FixedDimCallback, targets/callback.hpp), else null.
template <class Target>
class HmcRunOf final : public HmcRun {
 public:
  HmcRunOf(hmc::Sampler<Target>&& sampler, pybind11::dict outputs, const hmc::Draws& draws,
           std::unique_ptr<const Target> owned = nullptr)
      : HmcRun(std::move(outputs), draws), owned_(std::move(owned)), sampler_(std::move(sampler)) {}

  int64_t iteration() const override { return sampler_.iteration(); }
  int64_t num_iterations() const override { return sampler_.num_iterations(); }

 private:
  void run(int64_t iterations, int num_threads) override { sampler_.advance(iterations, draws(), num_threads); }

  std::unique_ptr<const Target> owned_;
  hmc::Sampler<Target> sampler_;
};

}  // namespace pyvi
