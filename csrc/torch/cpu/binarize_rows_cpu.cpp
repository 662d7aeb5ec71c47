// CPU kernel of pyvi::binarize_rows (the reference of the CUDA kernel; the bits of
// ../../common/vae_likelihood.h). On the CPU the step is a host value and this raises on bad indices.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "../../common/vae_likelihood.h"
#include "../binarize_rows.h"

namespace pyvi {

void binarize_rows_cpu(const RowBatch& s, const at::Tensor& images, const at::Tensor& order, const at::Tensor& seeds,
                       const at::Tensor& step_tensor, at::Tensor& out) {
  const int64_t step = step_tensor.item<int64_t>();
  TORCH_CHECK_VALUE(step >= 0 && step < s.num_seeds, "step ", step, " has no seed (seeds holds ", s.num_seeds, ")");
  TORCH_CHECK_VALUE(step * s.stride + s.batch_size <= s.order_size, "step ", step, " asks for rows up to ",
                    step * s.stride + s.batch_size, " but order holds ", s.order_size);
  const int64_t* rows = order.const_data_ptr<int64_t>() + step * s.stride;
  const int64_t seed = seeds.const_data_ptr<int64_t>()[step];
  TORCH_CHECK_VALUE(seed >= 0, "seeds must be >= 0, got ", seed);
  const uint64_t key = counter_key(static_cast<uint64_t>(seed));
  AT_DISPATCH_FLOATING_TYPES(images.scalar_type(), "binarize_rows_cpu", [&] {
    const scalar_t* data = images.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    for (int64_t r = 0; r < s.batch_size; ++r) {
      TORCH_CHECK_VALUE(rows[r] >= 0 && rows[r] < s.num_images, "order holds the row ", rows[r], " outside [0, ",
                        s.num_images, ")");
      const scalar_t* row = data + rows[r] * s.pixels;
      for (int64_t d = 0; d < s.pixels; ++d)
        o[r * s.pixels + d] = binary_pixel(row[d], key, static_cast<uint64_t>(r * s.pixels + d));
    }
  });
}

}  // namespace pyvi
