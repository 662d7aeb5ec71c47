// pyvi::binarize_rows: schema, argument checks, output allocation, registration (kernels in
// cpu/binarize_rows_cpu.cpp and cuda/binarize_rows_cuda.cu). Not differentiable (data in, bits out).
#include "binarize_rows.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "checks.h"
#include "no_cuda.h"

namespace pyvi {
namespace {

using Kernel = void (*)(const RowBatch&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                        at::Tensor&);

void check_index(const at::Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong, name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == dim, name, " must have ", dim, " dimension(s), got shape ", t.sizes());
}

template <Kernel kKernel>
at::Tensor binarize_rows(const at::Tensor& images, const at::Tensor& order, const at::Tensor& seeds,
                         const at::Tensor& step, int64_t stride, int64_t batch_size) {
  check_same_device("binarize_rows", {{"images", images}, {"order", order}, {"seeds", seeds}, {"step", step}});
  TORCH_CHECK_VALUE(images.dim() == 2, "images must have shape (num_images, pixels), got ", images.sizes());
  check_floating(images, "images");
  check_index(order, "order", 1);
  check_index(seeds, "seeds", 1);
  check_index(step, "step", 0);
  TORCH_CHECK_VALUE(batch_size >= 1 && stride >= batch_size, "need 1 <= batch_size <= stride, got batch_size ",
                    batch_size, " and stride ", stride);
  const RowBatch shape{images.size(0), images.size(1), order.size(0), seeds.size(0), stride, batch_size};
  at::Tensor out = at::empty({batch_size, images.size(1)}, images.options());
  const at::Tensor data = images.contiguous(), rows = order.contiguous(), keys = seeds.contiguous();
  kKernel(shape, data, rows, keys, step, out);
  return out;
}

}  // namespace
}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("binarize_rows(Tensor images, Tensor order, Tensor seeds, Tensor step, int stride, int batch_size) -> Tensor");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) { m.impl("binarize_rows", &pyvi::binarize_rows<pyvi::binarize_rows_cpu>); }

TORCH_LIBRARY_IMPL(pyvi, CUDA, m) { m.impl("binarize_rows", PYVI_CUDA_KERNEL(pyvi::binarize_rows<pyvi::binarize_rows_cuda>)); }
