// pyvi::binarize_rows: schema, argument checks, output allocation, registration (kernels in
// cpu/binarize_rows_cpu.cpp and cuda/binarize_rows_cuda.cu). Not differentiable (data in, bits out).
#include "binarize_rows.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "no_cuda.h"

namespace pyvi {
namespace {

void check_index(const at::Tensor& t, const at::Tensor& images, const char* name, int64_t dim) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong, name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == dim, name, " must have ", dim, " dimension(s), got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.device() == images.device(), name, " must be on the device of images (", images.device(),
                    "), got ", t.device());
}

at::Tensor binarize_rows(const at::Tensor& images, const at::Tensor& order, const at::Tensor& seeds,
                         const at::Tensor& step, int64_t stride, int64_t batch_size) {
  TORCH_CHECK_VALUE(images.dim() == 2, "images must have shape (num_images, pixels), got ", images.sizes());
  TORCH_CHECK_TYPE(images.scalar_type() == at::kFloat || images.scalar_type() == at::kDouble,
                   "images must be float32 or float64, got ", images.scalar_type());
  check_index(order, images, "order", 1);
  check_index(seeds, images, "seeds", 1);
  check_index(step, images, "step", 0);
  TORCH_CHECK_VALUE(batch_size >= 1 && stride >= batch_size, "need 1 <= batch_size <= stride, got batch_size ",
                    batch_size, " and stride ", stride);
  const RowBatch shape{images.size(0), images.size(1), order.size(0), seeds.size(0), stride, batch_size};
  at::Tensor out = at::empty({batch_size, images.size(1)}, images.options());
  const at::Tensor data = images.contiguous(), rows = order.contiguous(), keys = seeds.contiguous();
  if (images.is_cuda()) {
#ifdef PYVI_WITH_CUDA
    binarize_rows_cuda(shape, data, rows, keys, step, out);
#endif
  } else {
    TORCH_CHECK_VALUE(images.device().is_cpu(), "binarize_rows runs on CPU and CUDA tensors, got ", images.device());
    binarize_rows_cpu(shape, data, rows, keys, step, out);
  }
  return out;
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("binarize_rows(Tensor images, Tensor order, Tensor seeds, Tensor step, int stride, int batch_size) -> Tensor");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("binarize_rows", &pyvi::binarize_rows); }

#ifdef PYVI_WITH_CUDA
TORCH_LIBRARY_IMPL(pyvi, CUDA, m) { m.impl("binarize_rows", &pyvi::binarize_rows); }
#else
PYVI_NO_CUDA_FALLBACK("binarize_rows")
#endif
