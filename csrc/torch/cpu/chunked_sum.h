// The deterministic parameter-gradient reduction of the CPU flow backward kernels (planar, coupling).
//
// Samples are cut into chunks of kGradChunk fixed by the batch size alone (never by the thread
// count); each chunk sums its samples' contributions into its own row of partial sums, in parallel,
// and the rows are then added in chunk order. So gradients are bit-identical whatever the number
// of threads.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pyvi::cpu {

/// Samples per chunk of the reduction.
constexpr int64_t kGradChunk = 256;

/// sums[0, width) = the sum over chunks, in chunk order, of what add_chunk(begin, end, partial)
/// accumulates into a zeroed row `partial` for the samples [begin, end) of the batch.
template <typename T, typename AddChunk>
void sum_over_chunks(int64_t batch, int64_t width, T* sums, const AddChunk& add_chunk) {
  const int64_t num_chunks = (batch + kGradChunk - 1) / kGradChunk;
  // Chunk 0 sums straight into `sums`; the others into scratch rows, added afterwards.
  std::vector<T> partial(static_cast<size_t>(std::max<int64_t>(num_chunks - 1, 0) * width));
  std::fill(sums, sums + width, T(0));
  at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      T* row = chunk == 0 ? sums : partial.data() + (chunk - 1) * width;
      if (chunk > 0) std::fill(row, row + width, T(0));
      add_chunk(chunk * kGradChunk, std::min(batch, (chunk + 1) * kGradChunk), row);
    }
  });
  for (int64_t chunk = 1; chunk < num_chunks; ++chunk)
    for (int64_t j = 0; j < width; ++j) sums[j] += partial[(chunk - 1) * width + j];
}

}  // namespace pyvi::cpu
