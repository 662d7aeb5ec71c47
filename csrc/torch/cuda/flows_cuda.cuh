// CUDA helpers shared by the flow kernels: the warp-reducing gradient accumulator and the
// shared-memory staging of small weight tables.
#pragma once

#include <cstdint>

namespace pyvi {

constexpr int kFlowThreads = 128;                   // one thread per sample, 4 warps per block
constexpr int64_t kFlowSharedBytes = 48 * 1024;     // default dynamic shared-memory limit

/// accumulate(index, value) for the per-sample backward functions: the 32 lanes of a warp (which
/// call it in lock step, inactive samples with zeros) sum by shuffles, then lane 0 adds the warp's
/// total to global memory with one atomicAdd. Summation order across warps is not fixed on CUDA.
template <typename T>
struct WarpAtomicAdd {
  T* sums;
  __device__ __forceinline__ void operator()(int64_t index, T value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
    if ((threadIdx.x & 31) == 0) atomicAdd(sums + index, value);
  }
};

/// Copies `count` values to the block's shared memory when `use_shared`; returns where to read.
template <typename T>
__device__ __forceinline__ const T* stage_in_shared(const T* global, int64_t count, bool use_shared, T* shared) {
  if (!use_shared) return global;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) shared[j] = global[j];
  __syncthreads();
  return shared;
}

}  // namespace pyvi
