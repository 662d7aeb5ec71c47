// pyvi::binarize_rows: the VAE's minibatch in one kernel and without the host: rows
// order[step * stride + r] (r < batch_size) of the data set, binarised with seed seeds[step] exactly as
// pyvi::binarize(images[rows], seed) would (the counter-based bits of ../common/vae_likelihood.h), where
// step is a device tensor. A CUDA graph of a training step can then take a new batch on every replay.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pyvi {

struct RowBatch {
  int64_t num_images, pixels, order_size, num_seeds, stride, batch_size;
};

/// Kernels: fill out (batch_size, pixels) from contiguous images (num_images, pixels), int64 order, seeds
/// and step. Indices outside the tensors give zero rows (the GPU cannot raise; the host validates).
void binarize_rows_cpu(const RowBatch& shape, const at::Tensor& images, const at::Tensor& order,
                       const at::Tensor& seeds, const at::Tensor& step, at::Tensor& out);
void binarize_rows_cuda(const RowBatch& shape, const at::Tensor& images, const at::Tensor& order,
                        const at::Tensor& seeds, const at::Tensor& step, at::Tensor& out);

}  // namespace pyvi
