// CPU kernels of the fused VAE likelihood ops: one pass over the (S, B, D) decoder outputs per
// direction, rows of D pixels in parallel, no (S, B, D) temporaries besides the gradient itself.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>

#include <torch/library.h>

#include "../common/vae_likelihood.h"
#include "no_cuda.h"
#include "vae_fast_math.h"
#include "vae_likelihood.h"

#include <type_traits>
#include <vector>

namespace pyvi {

void check_likelihood_args(const at::Tensor& params, const at::Tensor& x, int64_t seed, const char* name) {
  TORCH_CHECK_VALUE(params.dim() == 3, name, " must have shape (samples, batch, pixels), got ", params.sizes());
  TORCH_CHECK_VALUE(x.dim() == 2 && x.size(0) == params.size(1) && x.size(1) == params.size(2),
                    "x must have shape (batch, pixels) = (", params.size(1), ", ", params.size(2), "), got ",
                    x.sizes());
  TORCH_CHECK_TYPE(params.scalar_type() == at::kFloat || params.scalar_type() == at::kDouble, name,
                   " must be float32 or float64, got ", params.scalar_type());
  TORCH_CHECK_TYPE(x.scalar_type() == params.scalar_type(), "x must have the dtype of ", name, " (",
                   params.scalar_type(), "), got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.device() == params.device(), "x must be on the device of ", name);
  TORCH_CHECK_VALUE(seed >= 0, "seed must be >= 0, got ", seed);
}

void check_log_scale(const at::Tensor& log_scale, const at::Tensor& params) {
  TORCH_CHECK_VALUE(log_scale.numel() == 1, "log_scale must have one element, got shape ", log_scale.sizes());
  TORCH_CHECK_TYPE(log_scale.scalar_type() == params.scalar_type(), "log_scale must have the dtype of mean");
  TORCH_CHECK_VALUE(log_scale.device() == params.device(), "log_scale must be on the device of mean");
}

void check_grad(const at::Tensor& grad, const at::Tensor& params) {
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == params.size(0) && grad.size(1) == params.size(1),
                    "grad must have shape (samples, batch), got ", grad.sizes());
  TORCH_CHECK_TYPE(grad.scalar_type() == params.scalar_type(), "grad must have the dtype of the parameters");
  TORCH_CHECK_VALUE(grad.device() == params.device(), "grad must be on the device of the parameters");
}

namespace {

// Rows of D pixels per parallel task: enough work to amortise scheduling.
constexpr int64_t kRowGrain = 16;

/// Sum over pixels of a per-pixel term, one row: float rows accumulate in 8 independent lanes so
/// the compiler can vectorise without reassociating (no -ffast-math here).
template <typename scalar_t, typename Term>
scalar_t row_sum(int64_t pixels, const Term& term) {
  constexpr int kLanes = 8;
  scalar_t lanes[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= pixels; d += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += term(d + j);
  scalar_t total = 0;
  for (; d < pixels; ++d) total += term(d);
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
}

/// The row's targets: x itself, or its dynamic draw written to `buffer` (one row of scratch per task).
template <bool kDynamic>
const float* row_targets(const float* xr, uint64_t key, uint64_t base, int64_t pixels, std::vector<float>& buffer) {
  if constexpr (!kDynamic) {
    return xr;
  } else {
    buffer.resize(static_cast<size_t>(pixels));
    for (int64_t d = 0; d < pixels; ++d) buffer[d] = binary_pixel(xr[d], key, base + d);
    return buffer.data();
  }
}

/// Calls body(row, targets) for every (sample, image) row of float32 (samples, batch, pixels) in
/// parallel, targets being the row's image in x or its dynamic draw.
template <bool kDynamic, typename Body>
void for_each_f32_row(const at::Tensor& logits, const at::Tensor& x, int64_t seed, const Body& body) {
  const int64_t batch = logits.size(1), pixels = logits.size(2);
  const float* xs = x.const_data_ptr<float>();
  const uint64_t key = counter_key(static_cast<uint64_t>(seed));
  at::parallel_for(0, logits.size(0) * batch, kRowGrain, [&](int64_t begin, int64_t end) {
    std::vector<float> buffer;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row % batch;
      body(row, row_targets<kDynamic>(xs + b * pixels, key, static_cast<uint64_t>(b * pixels), pixels, buffer));
    }
  });
}

/// Float32 Bernoulli forward (the training hot path): vectorised polynomial math per row (vae_fast_math.h).
template <bool kDynamic>
void bernoulli_forward_f32(const at::Tensor& logits, const at::Tensor& x, at::Tensor& out, int64_t seed) {
  const int64_t pixels = logits.size(2);
  const float* p = logits.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  for_each_f32_row<kDynamic>(logits, x, seed, [&](int64_t row, const float* t) {
    o[row] = fast::bernoulli_row(p + row * pixels, t, pixels);
  });
}

template <bool kDynamic>
void bernoulli_backward_f32(const at::Tensor& grad, const at::Tensor& logits, const at::Tensor& x, at::Tensor& out,
                            int64_t seed) {
  const int64_t pixels = logits.size(2);
  const float* g = grad.const_data_ptr<float>();
  const float* p = logits.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  for_each_f32_row<kDynamic>(logits, x, seed, [&](int64_t row, const float* t) {
    fast::bernoulli_grad_row(g[row], p + row * pixels, t, o + row * pixels, pixels);
  });
}

template <typename scalar_t, bool kDynamic, typename Term>
void forward_rows(const at::Tensor& params, const at::Tensor& x, at::Tensor& out, int64_t seed, const Term& term) {
  const int64_t samples = params.size(0), batch = params.size(1), pixels = params.size(2);
  const scalar_t* p = params.const_data_ptr<scalar_t>();
  const scalar_t* xs = x.const_data_ptr<scalar_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
  const uint64_t key = counter_key(static_cast<uint64_t>(seed));
  at::parallel_for(0, samples * batch, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row % batch;
      const scalar_t* pr = p + row * pixels;
      const scalar_t* xr = xs + b * pixels;
      const uint64_t base = static_cast<uint64_t>(b * pixels);
      o[row] = row_sum<scalar_t>(pixels, [&](int64_t d) {
        const scalar_t target = kDynamic ? binary_pixel(xr[d], key, base + d) : xr[d];
        return term(pr[d], target);
      });
    }
  });
}

template <typename scalar_t, bool kDynamic, typename Grad>
void backward_rows(const at::Tensor& grad, const at::Tensor& params, const at::Tensor& x, at::Tensor& out,
                   int64_t seed, const Grad& pixel_grad) {
  const int64_t samples = params.size(0), batch = params.size(1), pixels = params.size(2);
  const scalar_t* g = grad.const_data_ptr<scalar_t>();
  const scalar_t* p = params.const_data_ptr<scalar_t>();
  const scalar_t* xs = x.const_data_ptr<scalar_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
  const uint64_t key = counter_key(static_cast<uint64_t>(seed));
  at::parallel_for(0, samples * batch, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row % batch;
      const scalar_t* pr = p + row * pixels;
      const scalar_t* xr = xs + b * pixels;
      scalar_t* orow = o + row * pixels;
      const scalar_t gr = g[row];
      const uint64_t base = static_cast<uint64_t>(b * pixels);
      for (int64_t d = 0; d < pixels; ++d) {
        const scalar_t target = kDynamic ? binary_pixel(xr[d], key, base + d) : xr[d];
        orow[d] = gr * pixel_grad(pr[d], target);
      }
    }
  });
}

// The binarisation loop vectorises only where 64-bit lanes can be multiplied (AVX-512DQ's vpmullq):
// there it is ~10x faster than scalar splitmix64. Cloned for x86-64-v4 on top of the usual clones.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && !defined(PYVI_NO_CLONES)
#define PYVI_CPU_CLONES_V4 __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PYVI_CPU_CLONES_V4
#endif

/// o[i] = binary_pixel(p[i], key, begin + i) for i in [0, n).
PYVI_CPU_CLONES_V4 void binarize_span(const float* p, float* o, int64_t n, uint64_t key, uint64_t begin) {
  for (int64_t i = 0; i < n; ++i) o[i] = binary_pixel(p[i], key, begin + static_cast<uint64_t>(i));
}

PYVI_CPU_CLONES_V4 void binarize_span(const double* p, double* o, int64_t n, uint64_t key, uint64_t begin) {
  for (int64_t i = 0; i < n; ++i) o[i] = binary_pixel(p[i], key, begin + static_cast<uint64_t>(i));
}

/// Calls f with std::true_type / std::false_type, so the dynamic branch is resolved at compile time.
template <typename F>
void with_dynamic(bool dynamic, const F& f) {
  if (dynamic)
    f(std::true_type{});
  else
    f(std::false_type{});
}

}  // namespace

at::Tensor binarize_cpu(const at::Tensor& probs_in, int64_t seed) {
  TORCH_CHECK_TYPE(probs_in.scalar_type() == at::kFloat || probs_in.scalar_type() == at::kDouble,
                   "probs must be float32 or float64, got ", probs_in.scalar_type());
  TORCH_CHECK_VALUE(seed >= 0, "seed must be >= 0, got ", seed);
  const at::Tensor probs = probs_in.contiguous();
  at::Tensor out = at::empty_like(probs);
  const uint64_t key = counter_key(static_cast<uint64_t>(seed));
  AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "binarize_cpu", [&] {
    const scalar_t* p = probs.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, probs.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      binarize_span(p + begin, o + begin, end - begin, key, static_cast<uint64_t>(begin));
    });
  });
  return out;
}

at::Tensor bernoulli_log_lik_cpu(const at::Tensor& logits_in, const at::Tensor& x_in, int64_t seed, bool dynamic) {
  check_likelihood_args(logits_in, x_in, seed, "logits");
  TORCH_CHECK(logits_in.device().is_cpu(), "bernoulli_log_lik_cpu: logits must be a CPU tensor");
  const at::Tensor logits = logits_in.contiguous(), x = x_in.contiguous();
  at::Tensor out = at::empty({logits.size(0), logits.size(1)}, logits.options());
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "bernoulli_log_lik_cpu", [&] {
    with_dynamic(dynamic, [&](auto dyn) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        bernoulli_forward_f32<decltype(dyn)::value>(logits, x, out, seed);
      } else {
        forward_rows<scalar_t, decltype(dyn)::value>(logits, x, out, seed, [](scalar_t l, scalar_t t) {
          return bernoulli_log_prob(l, t);
        });
      }
    });
  });
  return out;
}

at::Tensor bernoulli_log_lik_backward_cpu(const at::Tensor& grad_in, const at::Tensor& logits_in,
                                          const at::Tensor& x_in, int64_t seed, bool dynamic) {
  check_likelihood_args(logits_in, x_in, seed, "logits");
  check_grad(grad_in, logits_in);
  TORCH_CHECK(logits_in.device().is_cpu(), "bernoulli_log_lik_backward_cpu: logits must be a CPU tensor");
  const at::Tensor grad = grad_in.contiguous(), logits = logits_in.contiguous(), x = x_in.contiguous();
  at::Tensor out = at::empty_like(logits);
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "bernoulli_log_lik_backward_cpu", [&] {
    with_dynamic(dynamic, [&](auto dyn) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        bernoulli_backward_f32<decltype(dyn)::value>(grad, logits, x, out, seed);
      } else {
        backward_rows<scalar_t, decltype(dyn)::value>(grad, logits, x, out, seed, [](scalar_t l, scalar_t t) {
          return bernoulli_log_prob_grad(l, t);
        });
      }
    });
  });
  return out;
}

at::Tensor gaussian_log_lik_cpu(const at::Tensor& mean_in, const at::Tensor& x_in, const at::Tensor& log_scale,
                                int64_t seed, bool dynamic) {
  check_likelihood_args(mean_in, x_in, seed, "mean");
  check_log_scale(log_scale, mean_in);
  TORCH_CHECK(mean_in.device().is_cpu(), "gaussian_log_lik_cpu: mean must be a CPU tensor");
  const at::Tensor mean = mean_in.contiguous(), x = x_in.contiguous();
  at::Tensor out = at::empty({mean.size(0), mean.size(1)}, mean.options());
  AT_DISPATCH_FLOATING_TYPES(mean.scalar_type(), "gaussian_log_lik_cpu", [&] {
    const scalar_t s = log_scale.item<scalar_t>();
    const scalar_t inv_scale = std::exp(-s);
    with_dynamic(dynamic, [&](auto dyn) {
      forward_rows<scalar_t, decltype(dyn)::value>(mean, x, out, seed, [inv_scale](scalar_t m, scalar_t t) {
        return gaussian_log_prob_kernel(m, t, inv_scale);
      });
    });
    out.add_(static_cast<double>(mean.size(2)) * static_cast<double>(gaussian_log_norm(s)));
  });
  return out;
}

at::Tensor gaussian_log_lik_backward_cpu(const at::Tensor& grad_in, const at::Tensor& mean_in, const at::Tensor& x_in,
                                         const at::Tensor& log_scale, int64_t seed, bool dynamic) {
  check_likelihood_args(mean_in, x_in, seed, "mean");
  check_log_scale(log_scale, mean_in);
  check_grad(grad_in, mean_in);
  TORCH_CHECK(mean_in.device().is_cpu(), "gaussian_log_lik_backward_cpu: mean must be a CPU tensor");
  const at::Tensor grad = grad_in.contiguous(), mean = mean_in.contiguous(), x = x_in.contiguous();
  at::Tensor out = at::empty_like(mean);
  AT_DISPATCH_FLOATING_TYPES(mean.scalar_type(), "gaussian_log_lik_backward_cpu", [&] {
    const scalar_t inv_scale = std::exp(-log_scale.item<scalar_t>());
    with_dynamic(dynamic, [&](auto dyn) {
      backward_rows<scalar_t, decltype(dyn)::value>(grad, mean, x, out, seed, [inv_scale](scalar_t m, scalar_t t) {
        return gaussian_log_prob_grad(m, t, inv_scale);
      });
    });
  });
  return out;
}

}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("binarize(Tensor probs, int seed) -> Tensor");
  m.def("bernoulli_log_lik(Tensor logits, Tensor x, int seed, bool dynamic) -> Tensor");
  m.def("bernoulli_log_lik_backward(Tensor grad, Tensor logits, Tensor x, int seed, bool dynamic) -> Tensor");
  m.def("gaussian_log_lik(Tensor mean, Tensor x, Tensor log_scale, int seed, bool dynamic) -> Tensor");
  m.def("gaussian_log_lik_backward(Tensor grad, Tensor mean, Tensor x, Tensor log_scale, int seed, "
        "bool dynamic) -> Tensor");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("binarize", &pyvi::binarize_cpu);
  m.impl("bernoulli_log_lik", &pyvi::bernoulli_log_lik_cpu);
  m.impl("bernoulli_log_lik_backward", &pyvi::bernoulli_log_lik_backward_cpu);
  m.impl("gaussian_log_lik", &pyvi::gaussian_log_lik_cpu);
  m.impl("gaussian_log_lik_backward", &pyvi::gaussian_log_lik_backward_cpu);
}

PYVI_NO_CUDA_FALLBACK("binarize")
PYVI_NO_CUDA_FALLBACK("bernoulli_log_lik")
PYVI_NO_CUDA_FALLBACK("bernoulli_log_lik_backward")
PYVI_NO_CUDA_FALLBACK("gaussian_log_lik")
PYVI_NO_CUDA_FALLBACK("gaussian_log_lik_backward")
