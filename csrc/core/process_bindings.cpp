// pyvi._core's process barrier (process_barrier.hpp), for pyvi._process_barrier: the block is an
// int32 numpy view of memory the processes share; it is checked here, the wait runs without the GIL.
// The block is taken without conversion (noconvert): a converted copy would be a private barrier.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "process_barrier.hpp"
#include "validate.hpp"

namespace py = pybind11;
using namespace pyvi;

namespace {

using Block = py::array_t<int32_t, py::array::c_style>;

int32_t* checked_block(Block& block, int world_size, int rank) {
  if (block.ndim() != 1 || block.size() < barrier::kWords)
    fail("block must be a 1-D int32 array of at least " + std::to_string(barrier::kWords) + " values, got " +
         std::to_string(block.size()));
  if (!block.writeable()) fail("block must be writable");
  if (world_size < 1 || world_size > barrier::kMaxProcesses)
    fail("world_size must be in [1, " + std::to_string(barrier::kMaxProcesses) + "], got " + std::to_string(world_size));
  if (rank < 0 || rank >= world_size)
    fail("rank must be in [0, world_size), got " + std::to_string(rank));
  if (reinterpret_cast<uintptr_t>(block.data()) % 64 != 0) fail("block must start on a 64-byte boundary");
  return block.mutable_data();
}

}  // namespace

void bind_process_barrier(py::module_& m) {
  m.attr("barrier_words") = barrier::kWords;
  m.attr("barrier_max_processes") = barrier::kMaxProcesses;
  m.def("barrier_arrive", [](Block block, int world_size, int rank, int32_t generation) {
    int32_t* words = checked_block(block, world_size, rank);
    barrier::arrive(words, rank, generation);
  }, py::arg("block").noconvert(), py::arg("world_size"), py::arg("rank"), py::arg("generation"),
     "Process `rank` arrives at barrier number `generation`.");
  m.def("barrier_wait", [](Block block, int world_size, int rank, int32_t generation, double spin_seconds,
                           double slice_seconds) {
    int32_t* words = checked_block(block, world_size, rank);
    if (!(spin_seconds >= 0.0) || !std::isfinite(spin_seconds))
      fail("spin_seconds must be a finite number >= 0, got " + std::to_string(spin_seconds));
    require_positive(slice_seconds, "slice_seconds");
    if (slice_seconds > 3600.0) fail("slice_seconds must be at most 3600, got " + std::to_string(slice_seconds));
    const auto spin_ns = static_cast<int64_t>(spin_seconds * 1e9), slice_ns = static_cast<int64_t>(slice_seconds * 1e9);
    py::gil_scoped_release release;
    return static_cast<int>(barrier::wait(words, world_size, generation, spin_ns, slice_ns));
  }, py::arg("block").noconvert(), py::arg("world_size"), py::arg("rank"), py::arg("generation"), py::arg("spin_seconds"),
     py::arg("slice_seconds"),
     "Waits for every process at barrier `generation`: 0 open, 1 a peer aborted, 2 the slice passed.");
  m.def("barrier_abort", [](Block block) {
    int32_t* words = checked_block(block, 1, 0);
    barrier::abort(words);
  }, py::arg("block").noconvert(), "Sets the abort word: every waiter returns 1.");
}
