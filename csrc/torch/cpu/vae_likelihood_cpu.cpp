// CPU kernels of the fused VAE likelihood ops: one pass over the (S, B, D) decoder outputs per
// direction, rows of D pixels in parallel, no (S, B, D) temporaries besides the gradient itself;
// float32 Bernoulli rows and the binarisation in the copies isa.h compiles for the CPU.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "../../common/vae_likelihood.h"
#include "../vae_likelihood.h"
#include "isa.h"
#include "vae_fast_math.h"

namespace pyvi {

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
void for_each_f32_row(const at::Tensor& logits, const at::Tensor& x, uint64_t key, const Body& body) {
  const int64_t batch = logits.size(1), pixels = logits.size(2);
  const float* xs = x.const_data_ptr<float>();
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
void bernoulli_forward_f32(const at::Tensor& logits, const at::Tensor& x, at::Tensor& out, uint64_t key) {
  const int64_t pixels = logits.size(2);
  const float* p = logits.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  for_each_f32_row<kDynamic>(logits, x, key, [&](int64_t row, const float* t) {
    o[row] = cpu::dispatch<&fast::bernoulli_row>(p + row * pixels, t, pixels);
  });
}

template <bool kDynamic>
void bernoulli_backward_f32(const at::Tensor& grad, const at::Tensor& logits, const at::Tensor& x, at::Tensor& out,
                            uint64_t key) {
  const int64_t pixels = logits.size(2);
  const float* g = grad.const_data_ptr<float>();
  const float* p = logits.const_data_ptr<float>();
  float* o = out.mutable_data_ptr<float>();
  for_each_f32_row<kDynamic>(logits, x, key, [&](int64_t row, const float* t) {
    cpu::dispatch<&fast::bernoulli_grad_row>(g[row], p + row * pixels, t, o + row * pixels, pixels);
  });
}

template <typename scalar_t, bool kDynamic, typename Term>
void forward_rows(const at::Tensor& params, const at::Tensor& x, at::Tensor& out, uint64_t key, const Term& term) {
  const int64_t samples = params.size(0), batch = params.size(1), pixels = params.size(2);
  const scalar_t* p = params.const_data_ptr<scalar_t>();
  const scalar_t* xs = x.const_data_ptr<scalar_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
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
                   uint64_t key, const Grad& pixel_grad) {
  const int64_t samples = params.size(0), batch = params.size(1), pixels = params.size(2);
  const scalar_t* g = grad.const_data_ptr<scalar_t>();
  const scalar_t* p = params.const_data_ptr<scalar_t>();
  const scalar_t* xs = x.const_data_ptr<scalar_t>();
  scalar_t* o = out.mutable_data_ptr<scalar_t>();
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

/// o[i] = binary_pixel(p[i], key, begin + i) for i in [0, n). The loop vectorises only where 64-bit
/// lanes can be multiplied (AVX-512DQ's vpmullq): there it is ~10x faster than scalar splitmix64, so
/// it is dispatched up to x86-64-v4.
template <typename T>
void binarize_span(const T* p, T* o, int64_t n, uint64_t key, uint64_t begin) {
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

void binarize_cpu(const at::Tensor& probs, uint64_t key, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "binarize_cpu", [&] {
    const scalar_t* p = probs.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, probs.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
      cpu::dispatch<&binarize_span<scalar_t>, cpu::Isa::kX86_64_V4>(p + begin, o + begin, end - begin, key,
                                                                      static_cast<uint64_t>(begin));
    });
  });
}

void bernoulli_log_lik_cpu(const LikelihoodConfig& config, const at::Tensor& logits, const at::Tensor& x,
                           at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "bernoulli_log_lik_cpu", [&] {
    with_dynamic(config.dynamic, [&](auto dyn) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        bernoulli_forward_f32<decltype(dyn)::value>(logits, x, out, config.key);
      } else {
        forward_rows<scalar_t, decltype(dyn)::value>(logits, x, out, config.key, [](scalar_t l, scalar_t t) {
          return bernoulli_log_prob(l, t);
        });
      }
    });
  });
}

void bernoulli_log_lik_backward_cpu(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& logits,
                                    const at::Tensor& x, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "bernoulli_log_lik_backward_cpu", [&] {
    with_dynamic(config.dynamic, [&](auto dyn) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        bernoulli_backward_f32<decltype(dyn)::value>(grad, logits, x, out, config.key);
      } else {
        backward_rows<scalar_t, decltype(dyn)::value>(grad, logits, x, out, config.key, [](scalar_t l, scalar_t t) {
          return bernoulli_log_prob_grad(l, t);
        });
      }
    });
  });
}

void gaussian_log_lik_cpu(const LikelihoodConfig& config, const at::Tensor& mean, const at::Tensor& x,
                          const at::Tensor& log_scale, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(mean.scalar_type(), "gaussian_log_lik_cpu", [&] {
    const scalar_t s = log_scale.item<scalar_t>();
    const GaussianInvScale<scalar_t> inv_scale = gaussian_inv_scale(s);
    with_dynamic(config.dynamic, [&](auto dyn) {
      forward_rows<scalar_t, decltype(dyn)::value>(mean, x, out, config.key, [inv_scale](scalar_t m, scalar_t t) {
        return gaussian_log_prob_kernel(m, t, inv_scale);
      });
    });
    out.add_(static_cast<double>(mean.size(2)) * static_cast<double>(gaussian_log_norm(s)));
  });
}

void gaussian_log_lik_backward_cpu(const LikelihoodConfig& config, const at::Tensor& grad, const at::Tensor& mean,
                                   const at::Tensor& x, const at::Tensor& log_scale, at::Tensor& out) {
  AT_DISPATCH_FLOATING_TYPES(mean.scalar_type(), "gaussian_log_lik_backward_cpu", [&] {
    const GaussianInvScale<scalar_t> inv_scale = gaussian_inv_scale(log_scale.item<scalar_t>());
    with_dynamic(config.dynamic, [&](auto dyn) {
      backward_rows<scalar_t, decltype(dyn)::value>(grad, mean, x, out, config.key,
                                                    [inv_scale](scalar_t m, scalar_t t) {
                                                      return gaussian_log_prob_grad(m, t, inv_scale);
                                                    });
    });
  });
}

}  // namespace pyvi
