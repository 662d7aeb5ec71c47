// Cooperative CUDA kernels of pyvi::coupling_forward / coupling_backward for WIDE conditioners (hidden
// >= 16, as on the CPU, where the GEMM backward takes over): a block of 256 threads evaluates a tile of
// samples together, the tile's activations and the current layer's weights staged in shared memory,
// each hidden layer a small matrix product with a 4 x 4 register tile per thread. The one-thread-per-
// sample kernels (coupling_cuda.cu) keep narrow conditioners, where a sample's MLP fits in registers.
//
// Math: the per-sample forward and backward of ../../common/coupling.h, regrouped by layer over the
// tile (same formulas; sums in another order). Parameter gradients: each block adds its tiles' sums
// into its own row of a (blocks, num_params) buffer (no atomics), and one more kernel sums the rows in
// block order: the same bits on every run on a given GPU (the grid depends on its SM count).
//
// References:
//   L. Dinh, J. Sohl-Dickstein and S. Bengio, "Density estimation using Real NVP", ICLR 2017
//   (arXiv:1605.08803); V. Volkov and J. Demmel, "Benchmarking GPUs to tune dense linear algebra",
//   SC 2008 (register-tiled matrix products).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "../coupling.h"

namespace pyvi {

/// Conditioner width from which the CUDA coupling kernels use the cooperative ones.
constexpr int64_t kCouplingTiledMinHidden = 16;

/// Whether the tiled kernels take this shape on the current device: hidden >= kCouplingTiledMinHidden and
/// shared memory for a tile of at least 16 samples (otherwise the per-sample kernels run).
bool coupling_tiled_supported(const CouplingShape& shape, at::ScalarType dtype);

/// The kernels of coupling_cuda.cu's signature (contiguous validated inputs, preallocated outputs).
void coupling_forward_tiled_cuda(const CouplingConfig& config, const at::Tensor& z, const at::Tensor& params,
                                 at::Tensor& x, at::Tensor& log_det, at::Tensor& states);
void coupling_backward_tiled_cuda(const CouplingConfig& config, const at::Tensor& grad_x,
                                  const at::Tensor& grad_log_det, const at::Tensor& params, const at::Tensor& states,
                                  at::Tensor& grad_z, at::Tensor& grad_params);

}  // namespace pyvi
