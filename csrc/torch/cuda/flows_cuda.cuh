// CUDA helpers shared by the flow kernels: the deterministic warp-reducing gradient accumulator, the
// fixed-order sum of its rows, and the shared-memory staging of small weight tables.
#pragma once

#include <algorithm>
#include <cstdint>

namespace pyvi {

constexpr int kFlowThreads = 128;                   // one thread per sample, 4 warps per block
constexpr int64_t kFlowSharedBytes = 48 * 1024;     // default dynamic shared-memory limit

/// accumulate(index, value) for the per-sample backward functions, deterministic: the 32 lanes of a
/// warp (which call it in lock step, inactive samples with zeros) sum by shuffles, and lane 0 stores
/// the warp's total in the warp's own row of a (num_warps, num_sums) buffer. The per-sample functions
/// call accumulate once per index per sample, so every entry of every row is written exactly once (no
/// zeroing, no atomics); sum_rows_kernel then adds the rows in warp order, the same bits on every run.
template <typename T>
struct WarpRowSums {
  T* rows;
  int64_t num_sums;
  __device__ __forceinline__ void operator()(int64_t index, T value) {
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
    if ((threadIdx.x & 31) == 0) {
      const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
      rows[warp * num_sums + index] = value;
    }
  }
};

/// out[p] = sum over r = 0, 1, ... of rows[r][p]: a fixed-order column sum.
template <typename T>
__global__ void sum_rows_kernel(const T* __restrict__ rows, int64_t num_rows, int64_t cols, T* __restrict__ out) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < cols; p += int64_t(gridDim.x) * blockDim.x) {
    T sum = T(0);
    for (int64_t r = 0; r < num_rows; ++r) sum += rows[r * cols + p];
    out[p] = sum;
  }
}

/// Blocks of 256 threads for sum_rows_kernel over `cols` columns.
inline unsigned sum_rows_blocks(int64_t cols) {
  return static_cast<unsigned>(std::min<int64_t>((cols + 255) / 256, 1024));
}

/// Copies `count` values to the block's shared memory when `use_shared`; returns where to read.
template <typename T>
__device__ __forceinline__ const T* stage_in_shared(const T* global, int64_t count, bool use_shared, T* shared) {
  if (!use_shared) return global;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) shared[j] = global[j];
  __syncthreads();
  return shared;
}

}  // namespace pyvi
