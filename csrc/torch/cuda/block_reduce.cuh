// A fixed-order sum over one thread block: each thread's partial in shared memory, then a tree
// whose shape depends only on blockDim. Deterministic (the same bits on every run), unlike atomics.
#pragma once

namespace pyvi {

/// Sum of `value` over the block (blockDim.x a power of two, <= 1024); every thread gets it.
__device__ __forceinline__ double block_sum(double value, double* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (unsigned int half = blockDim.x / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();
  return total;
}

}  // namespace pyvi
