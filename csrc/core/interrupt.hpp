// Ctrl-C for a long native call that runs as one piece (the k-NN estimator): the work runs on a
// worker thread while the calling thread, which releases the GIL, takes it back every kPoll to run
// Python's signal handlers (PyErr_CheckSignals). When one raises (KeyboardInterrupt), the work is
// asked to stop: its parallel loops skip their remaining items and throw Interrupted
// (parallel.hpp), the worker ends within one item, and the Python error propagates. Only code
// between parallel loops (a k-d tree's top levels) runs to its end first.
//
// HMC does not need this: pyvi.hmc advances its runs in chunks from Python (hmc_run.hpp).
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "parallel.hpp"

namespace pyvi {

/// How often the calling thread runs Python's signal handlers while the work runs.
constexpr std::chrono::milliseconds kPoll{50};

/// work() on a worker thread that Ctrl-C can stop (see above), or here when `small` (the call is
/// too short to need it: no thread). Called with the GIL held; returns what work() returns, or
/// raises the signal handler's error (pybind11::error_already_set) or work()'s exception.
template <class Work>
auto run_interruptible(Work&& work, bool small) -> decltype(work()) {
  using Result = decltype(work());
  if (small) {
    pybind11::gil_scoped_release release;
    return work();
  }
  StopToken token;
  std::optional<Result> result;
  std::exception_ptr error;
  bool done = false, signalled = false;
  std::mutex mutex;
  std::condition_variable finished;
  {
    pybind11::gil_scoped_release release;
    std::thread worker([&] {
      StopScope scope(&token);
      try {
        result.emplace(work());
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex);
      done = true;
      finished.notify_one();
    });
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished.wait_for(lock, kPoll, [&] { return done; })) {
      if (signalled) continue;  // asked to stop: wait for the worker's current item
      lock.unlock();
      {
        pybind11::gil_scoped_acquire gil;
        signalled = PyErr_CheckSignals() != 0;  // the handler's exception stays set
      }
      if (signalled) token.requested.store(true);
      lock.lock();
    }
    lock.unlock();
    worker.join();
  }
  if (signalled) throw pybind11::error_already_set();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

}  // namespace pyvi
