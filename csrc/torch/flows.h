// Declarations of the fused normalizing-flow kernels (math in ../common/planar.h, coupling.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>
#include <vector>

namespace pyvi {

/// Planar stack: (x (B, D), log_det (B,), states (B, K, D)) from z (B, D), params (K, 2D+1).
std::tuple<at::Tensor, at::Tensor, at::Tensor> planar_forward_cpu(const at::Tensor& z, const at::Tensor& params);
std::tuple<at::Tensor, at::Tensor, at::Tensor> planar_forward_cuda(const at::Tensor& z, const at::Tensor& params);
/// (grad_z (B, D), grad_params (K, 2D+1)) from the upstream gradients and the saved states.
std::tuple<at::Tensor, at::Tensor> planar_backward_cpu(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                                       const at::Tensor& params, const at::Tensor& states);
std::tuple<at::Tensor, at::Tensor> planar_backward_cuda(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                                        const at::Tensor& params, const at::Tensor& states);
void check_planar_args(const at::Tensor& z, const at::Tensor& params);
void check_planar_backward_args(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                const at::Tensor& params, const at::Tensor& states);

/// Coupling stack (NICE: affine=false, with the final log-scales; RealNVP: affine=true):
/// (x (B, D), log_det (B,), states (B, C+1, D)) from z (B, D) and the packed params (P,).
std::tuple<at::Tensor, at::Tensor, at::Tensor> coupling_forward_cpu(const at::Tensor& z, const at::Tensor& params,
                                                                    int64_t num_couplings, int64_t hidden,
                                                                    int64_t depth, bool affine, double scale_bound);
std::tuple<at::Tensor, at::Tensor, at::Tensor> coupling_forward_cuda(const at::Tensor& z, const at::Tensor& params,
                                                                     int64_t num_couplings, int64_t hidden,
                                                                     int64_t depth, bool affine, double scale_bound);
std::tuple<at::Tensor, at::Tensor> coupling_backward_cpu(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                                         const at::Tensor& params, const at::Tensor& states,
                                                         int64_t num_couplings, int64_t hidden, int64_t depth,
                                                         bool affine, double scale_bound);
std::tuple<at::Tensor, at::Tensor> coupling_backward_cuda(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                                          const at::Tensor& params, const at::Tensor& states,
                                                          int64_t num_couplings, int64_t hidden, int64_t depth,
                                                          bool affine, double scale_bound);
void check_coupling_args(const at::Tensor& z, const at::Tensor& params, int64_t num_couplings, int64_t hidden,
                         int64_t depth, bool affine, double scale_bound);
void check_coupling_backward_args(const at::Tensor& grad_x, const at::Tensor& grad_log_det,
                                  const at::Tensor& params, const at::Tensor& states, int64_t num_couplings,
                                  int64_t hidden, int64_t depth, bool affine, double scale_bound);

/// Samples per chunk of the CPU backward's parameter-gradient reduction. Chunks are fixed by the
/// batch size alone (never by the thread count) and summed in chunk order, so gradients are
/// bit-identical whatever the number of threads.
constexpr int64_t kGradChunk = 256;

}  // namespace pyvi
