// Declarations of the banana log-joint kernels (see ../common/banana.h for the math).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace pyvi {

/// (log p(y, theta), d/dtheta log p(y, theta)) for theta of shape (B, 2).
std::tuple<at::Tensor, at::Tensor> banana_log_joint_cpu(const at::Tensor& theta, double num_data,
                                                        double mean_y, double ss_y, double sigma_y,
                                                        double sigma_theta);
std::tuple<at::Tensor, at::Tensor> banana_log_joint_cuda(const at::Tensor& theta, double num_data,
                                                         double mean_y, double ss_y,
                                                         double sigma_y, double sigma_theta);

/// Argument checks shared by the CPU and CUDA kernels (TORCH_CHECK -> Python errors).
void check_banana_args(const at::Tensor& theta, double num_data, double ss_y, double sigma_y,
                       double sigma_theta);

}  // namespace pyvi
