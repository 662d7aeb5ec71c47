// CUDA kernel of pyvi::binarize_rows: one thread per output pixel, the row and seed read from the
// device-side step (a CUDA graph replays it with a new step each time). Bits of
// ../../common/vae_likelihood.h, the same as pyvi::binarize's.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "../../common/vae_likelihood.h"
#include "../binarize_rows.h"

namespace pyvi {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void binarize_rows_kernel(RowBatch s, const T* __restrict__ images, const int64_t* __restrict__ order,
                                     const int64_t* __restrict__ seeds, const int64_t* __restrict__ step_ptr,
                                     T* __restrict__ out) {
  const int64_t step = *step_ptr;
  const bool valid_step = step >= 0 && step < s.num_seeds && step * s.stride + s.batch_size <= s.order_size;
  const int64_t seed = valid_step ? seeds[step] : 0;
  const uint64_t key = counter_key(static_cast<uint64_t>(seed));
  const int64_t total = s.batch_size * s.pixels;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / s.pixels, d = i - r * s.pixels;
    const int64_t row = valid_step ? order[step * s.stride + r] : -1;
    out[i] = row >= 0 && row < s.num_images && seed >= 0
                 ? binary_pixel(images[row * s.pixels + d], key, static_cast<uint64_t>(i))
                 : T(0);
  }
}

}  // namespace

void binarize_rows_cuda(const RowBatch& shape, const at::Tensor& images, const at::Tensor& order,
                        const at::Tensor& seeds, const at::Tensor& step, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(images.device());
  const int64_t total = shape.batch_size * shape.pixels;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((total + kThreads - 1) / kThreads, 4096));
  AT_DISPATCH_FLOATING_TYPES(images.scalar_type(), "binarize_rows_cuda", [&] {
    binarize_rows_kernel<scalar_t><<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        shape, images.const_data_ptr<scalar_t>(), order.const_data_ptr<int64_t>(), seeds.const_data_ptr<int64_t>(),
        step.const_data_ptr<int64_t>(), out.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace pyvi
