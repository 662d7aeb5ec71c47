// CPU kernels of pyvi::gaussian_latent: the posterior heads (two (L, H) linear maps of the hidden
// units), z = mu + exp(log_var / 2) eps and the analytic KL, forward and backward, one pass over
// the hidden units per image (math in ../common/gaussian_latent.h). Dots run in 16 independent
// lanes and the gradient updates are axpys over H, so both vectorise without reassociation flags;
// every sum has one fixed order whatever the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "../common/gaussian_latent.h"
#include "gaussian_latent.h"
#include "no_cuda.h"
#include "vae_fast_math.h"  // PYVI_CPU_CLONES, PYVI_VEC_INLINE

#include <cstdint>
#include <utility>

namespace pyvi {

namespace {

void check_float(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), name, " must have the dtype of h (", like.scalar_type(),
                   "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == like.device(), name, " must be on the device of h (", like.device(), ")");
}

}  // namespace

/// The shapes, dtypes and devices of the tensors both directions take.
void check_latent_core(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& w_log_var,
                       const at::Tensor& eps) {
  TORCH_CHECK_VALUE(h.dim() == 2, "h must have shape (batch, hidden), got ", h.sizes());
  TORCH_CHECK_TYPE(h.scalar_type() == at::kFloat || h.scalar_type() == at::kDouble,
                   "h must be float32 or float64, got ", h.scalar_type());
  TORCH_CHECK_VALUE(w_mu.dim() == 2 && w_mu.size(1) == h.size(1), "w_mu must have shape (latent, ", h.size(1),
                    "), got ", w_mu.sizes());
  TORCH_CHECK_VALUE(w_log_var.sizes() == w_mu.sizes(), "w_log_var must have the shape of w_mu (", w_mu.sizes(),
                    "), got ", w_log_var.sizes());
  TORCH_CHECK_VALUE(eps.dim() == 2 && eps.size(0) == h.size(0) && eps.size(1) == w_mu.size(0),
                    "eps must have shape (", h.size(0), ", ", w_mu.size(0), "), got ", eps.sizes());
  check_float(w_mu, h, "w_mu");
  check_float(w_log_var, h, "w_log_var");
  check_float(eps, h, "eps");
}

void check_gaussian_latent_args(const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& b_mu,
                                const at::Tensor& w_log_var, const at::Tensor& b_log_var, const at::Tensor& eps) {
  check_latent_core(h, w_mu, w_log_var, eps);
  const int64_t latent = w_mu.size(0);
  TORCH_CHECK_VALUE(b_mu.dim() == 1 && b_mu.size(0) == latent, "b_mu must have shape (", latent, ",), got ",
                    b_mu.sizes());
  TORCH_CHECK_VALUE(b_log_var.dim() == 1 && b_log_var.size(0) == latent, "b_log_var must have shape (", latent,
                    ",), got ", b_log_var.sizes());
  check_float(b_mu, h, "b_mu");
  check_float(b_log_var, h, "b_log_var");
}

void check_gaussian_latent_backward_args(const at::Tensor& grad_z, const at::Tensor& grad_kl,
                                         const at::Tensor& grad_mu, const at::Tensor& grad_log_var,
                                         const at::Tensor& h, const at::Tensor& w_mu, const at::Tensor& w_log_var,
                                         const at::Tensor& eps, const at::Tensor& mu, const at::Tensor& log_var) {
  check_latent_core(h, w_mu, w_log_var, eps);
  for (const auto& [t, name] : {std::pair{&grad_z, "grad_z"}, std::pair{&grad_mu, "grad_mu"},
                                std::pair{&grad_log_var, "grad_log_var"}, std::pair{&mu, "mu"},
                                std::pair{&log_var, "log_var"}}) {
    TORCH_CHECK_VALUE(t->sizes() == eps.sizes(), name, " must have the shape of eps (", eps.sizes(), "), got ",
                      t->sizes());
    check_float(*t, h, name);
  }
  TORCH_CHECK_VALUE(grad_kl.dim() == 1 && grad_kl.size(0) == h.size(0), "grad_kl must have shape (", h.size(0),
                    ",), got ", grad_kl.sizes());
  check_float(grad_kl, h, "grad_kl");
}

namespace {

constexpr int64_t kRowGrain = 16;

/// sum_k a[k] b[k] in 16 independent lanes (vectorisable without reassociating).
template <typename scalar_t>
PYVI_VEC_INLINE scalar_t dot(const scalar_t* a, const scalar_t* b, int64_t n) {
  constexpr int kLanes = 16;
  scalar_t lanes[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += a[k + j] * b[k + j];
  scalar_t total = 0;
  for (; k < n; ++k) total += a[k] * b[k];
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
}

template <typename scalar_t>
struct Forward {
  const scalar_t *h, *w_mu, *b_mu, *w_lv, *b_lv, *eps;
  scalar_t *z, *kl, *mu, *lv;
  int64_t hidden, latent;
};

template <typename scalar_t>
PYVI_VEC_INLINE void forward_rows(const Forward<scalar_t>& a, int64_t begin, int64_t end) {
  for (int64_t b = begin; b < end; ++b) {
    const scalar_t* hb = a.h + b * a.hidden;
    scalar_t kl = 0;
    for (int64_t l = 0; l < a.latent; ++l) {
      const scalar_t m = a.b_mu[l] + dot(hb, a.w_mu + l * a.hidden, a.hidden);
      const scalar_t v = a.b_lv[l] + dot(hb, a.w_lv + l * a.hidden, a.hidden);
      const int64_t i = b * a.latent + l;
      a.mu[i] = m;
      a.lv[i] = v;
      a.z[i] = latent_sample(m, v, a.eps[i]);
      kl += latent_kl_term(m, v);
    }
    a.kl[b] = kl;
  }
}

PYVI_CPU_CLONES void forward_span(const Forward<float>& a, int64_t begin, int64_t end) { forward_rows(a, begin, end); }
PYVI_CPU_CLONES void forward_span(const Forward<double>& a, int64_t begin, int64_t end) { forward_rows(a, begin, end); }

template <typename scalar_t>
struct Backward {
  const scalar_t *d_mu, *d_lv, *h, *w_mu, *w_lv;
  scalar_t *grad_h, *grad_w_mu, *grad_w_lv;
  int64_t batch, hidden, latent;
};

/// grad_h[b, :] = sum_l d_mu[b, l] w_mu[l, :] + d_lv[b, l] w_lv[l, :] for the rows [begin, end).
template <typename scalar_t>
PYVI_VEC_INLINE void grad_h_rows(const Backward<scalar_t>& a, int64_t begin, int64_t end) {
  const int64_t n = a.hidden;
  for (int64_t b = begin; b < end; ++b) {
    scalar_t* out = a.grad_h + b * n;
    for (int64_t k = 0; k < n; ++k) out[k] = scalar_t(0);
    for (int64_t l = 0; l < a.latent; ++l) {
      const scalar_t gm = a.d_mu[b * a.latent + l], gv = a.d_lv[b * a.latent + l];
      const scalar_t* wm = a.w_mu + l * n;
      const scalar_t* wv = a.w_lv + l * n;
      for (int64_t k = 0; k < n; ++k) out[k] += gm * wm[k] + gv * wv[k];
    }
  }
}

/// grad_w[l, k] = sum_b d[b, l] h[b, k] for the hidden units [begin, end), images added in order.
template <typename scalar_t>
PYVI_VEC_INLINE void grad_w_columns(const Backward<scalar_t>& a, int64_t begin, int64_t end) {
  const int64_t n = a.hidden;
  for (int64_t l = 0; l < a.latent; ++l)
    for (int64_t k = begin; k < end; ++k) a.grad_w_mu[l * n + k] = a.grad_w_lv[l * n + k] = scalar_t(0);
  for (int64_t b = 0; b < a.batch; ++b) {
    const scalar_t* hb = a.h + b * n;
    for (int64_t l = 0; l < a.latent; ++l) {
      const scalar_t gm = a.d_mu[b * a.latent + l], gv = a.d_lv[b * a.latent + l];
      scalar_t* om = a.grad_w_mu + l * n;
      scalar_t* ov = a.grad_w_lv + l * n;
      for (int64_t k = begin; k < end; ++k) {
        om[k] += gm * hb[k];
        ov[k] += gv * hb[k];
      }
    }
  }
}

PYVI_CPU_CLONES void grad_h_span(const Backward<float>& a, int64_t begin, int64_t end) { grad_h_rows(a, begin, end); }
PYVI_CPU_CLONES void grad_h_span(const Backward<double>& a, int64_t begin, int64_t end) { grad_h_rows(a, begin, end); }
PYVI_CPU_CLONES void grad_w_span(const Backward<float>& a, int64_t begin, int64_t end) { grad_w_columns(a, begin, end); }
PYVI_CPU_CLONES void grad_w_span(const Backward<double>& a, int64_t begin, int64_t end) {
  grad_w_columns(a, begin, end);
}

}  // namespace

LatentOutputs gaussian_latent_cpu(const at::Tensor& h_in, const at::Tensor& w_mu_in, const at::Tensor& b_mu_in,
                                  const at::Tensor& w_lv_in, const at::Tensor& b_lv_in, const at::Tensor& eps_in) {
  check_gaussian_latent_args(h_in, w_mu_in, b_mu_in, w_lv_in, b_lv_in, eps_in);
  TORCH_CHECK(h_in.device().is_cpu(), "gaussian_latent_cpu: h must be a CPU tensor");
  const at::Tensor h = h_in.contiguous(), w_mu = w_mu_in.contiguous(), b_mu = b_mu_in.contiguous();
  const at::Tensor w_lv = w_lv_in.contiguous(), b_lv = b_lv_in.contiguous(), eps = eps_in.contiguous();
  const int64_t batch = h.size(0), hidden = h.size(1), latent = w_mu.size(0);
  at::Tensor z = at::empty({batch, latent}, h.options()), kl = at::empty({batch}, h.options());
  at::Tensor mu = at::empty({batch, latent}, h.options()), log_var = at::empty({batch, latent}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gaussian_latent_cpu", [&] {
    const Forward<scalar_t> args{h.const_data_ptr<scalar_t>(),      w_mu.const_data_ptr<scalar_t>(),
                                 b_mu.const_data_ptr<scalar_t>(),   w_lv.const_data_ptr<scalar_t>(),
                                 b_lv.const_data_ptr<scalar_t>(),   eps.const_data_ptr<scalar_t>(),
                                 z.mutable_data_ptr<scalar_t>(),    kl.mutable_data_ptr<scalar_t>(),
                                 mu.mutable_data_ptr<scalar_t>(),   log_var.mutable_data_ptr<scalar_t>(),
                                 hidden,                            latent};
    at::parallel_for(0, batch, kRowGrain, [&](int64_t begin, int64_t end) { forward_span(args, begin, end); });
  });
  return {z, kl, mu, log_var};
}

LatentGrads gaussian_latent_backward_cpu(const at::Tensor& grad_z_in, const at::Tensor& grad_kl_in,
                                         const at::Tensor& grad_mu_in, const at::Tensor& grad_lv_in,
                                         const at::Tensor& h_in, const at::Tensor& w_mu_in, const at::Tensor& w_lv_in,
                                         const at::Tensor& eps_in, const at::Tensor& mu_in, const at::Tensor& lv_in) {
  check_gaussian_latent_backward_args(grad_z_in, grad_kl_in, grad_mu_in, grad_lv_in, h_in, w_mu_in, w_lv_in, eps_in,
                                      mu_in, lv_in);
  TORCH_CHECK(h_in.device().is_cpu(), "gaussian_latent_backward_cpu: h must be a CPU tensor");
  const at::Tensor grad_z = grad_z_in.contiguous(), grad_kl = grad_kl_in.contiguous();
  const at::Tensor grad_mu = grad_mu_in.contiguous(), grad_lv = grad_lv_in.contiguous();
  const at::Tensor h = h_in.contiguous(), w_mu = w_mu_in.contiguous(), w_lv = w_lv_in.contiguous();
  const at::Tensor eps = eps_in.contiguous(), mu = mu_in.contiguous(), lv = lv_in.contiguous();
  const int64_t batch = h.size(0), hidden = h.size(1), latent = w_mu.size(0);
  at::Tensor d_mu = at::empty({batch, latent}, h.options()), d_lv = at::empty({batch, latent}, h.options());
  at::Tensor grad_eps = at::empty({batch, latent}, h.options()), grad_h = at::empty({batch, hidden}, h.options());
  at::Tensor grad_w_mu = at::empty({latent, hidden}, h.options()), grad_w_lv = at::empty({latent, hidden}, h.options());
  at::Tensor grad_b_mu = at::zeros({latent}, h.options()), grad_b_lv = at::zeros({latent}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gaussian_latent_backward_cpu", [&] {
    const scalar_t* gz = grad_z.const_data_ptr<scalar_t>();
    const scalar_t* gk = grad_kl.const_data_ptr<scalar_t>();
    const scalar_t* gm = grad_mu.const_data_ptr<scalar_t>();
    const scalar_t* gv = grad_lv.const_data_ptr<scalar_t>();
    const scalar_t* m = mu.const_data_ptr<scalar_t>();
    const scalar_t* v = lv.const_data_ptr<scalar_t>();
    const scalar_t* e = eps.const_data_ptr<scalar_t>();
    scalar_t* dm = d_mu.mutable_data_ptr<scalar_t>();
    scalar_t* dv = d_lv.mutable_data_ptr<scalar_t>();
    scalar_t* de = grad_eps.mutable_data_ptr<scalar_t>();
    scalar_t* gbm = grad_b_mu.mutable_data_ptr<scalar_t>();
    scalar_t* gbv = grad_b_lv.mutable_data_ptr<scalar_t>();
    // B x L numbers: serial, and the bias gradients sum them in image order.
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t l = 0; l < latent; ++l) {
        const int64_t i = b * latent + l;
        latent_grads(gz[i], gk[b], gm[i], gv[i], m[i], v[i], e[i], dm + i, dv + i, de + i);
        gbm[l] += dm[i];
        gbv[l] += dv[i];
      }
    }
    const Backward<scalar_t> args{dm,
                                  dv,
                                  h.const_data_ptr<scalar_t>(),
                                  w_mu.const_data_ptr<scalar_t>(),
                                  w_lv.const_data_ptr<scalar_t>(),
                                  grad_h.mutable_data_ptr<scalar_t>(),
                                  grad_w_mu.mutable_data_ptr<scalar_t>(),
                                  grad_w_lv.mutable_data_ptr<scalar_t>(),
                                  batch,
                                  hidden,
                                  latent};
    at::parallel_for(0, batch, kRowGrain, [&](int64_t begin, int64_t end) { grad_h_span(args, begin, end); });
    at::parallel_for(0, hidden, 128, [&](int64_t begin, int64_t end) { grad_w_span(args, begin, end); });
  });
  return {grad_h, grad_w_mu, grad_b_mu, grad_w_lv, grad_b_lv, grad_eps};
}

}  // namespace pyvi

TORCH_LIBRARY_FRAGMENT(pyvi, m) {
  m.def("gaussian_latent(Tensor h, Tensor w_mu, Tensor b_mu, Tensor w_log_var, Tensor b_log_var, Tensor eps) -> "
        "(Tensor, Tensor, Tensor, Tensor)");
  m.def("gaussian_latent_backward(Tensor grad_z, Tensor grad_kl, Tensor grad_mu, Tensor grad_log_var, Tensor h, "
        "Tensor w_mu, Tensor w_log_var, Tensor eps, Tensor mu, Tensor log_var) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(pyvi, CPU, m) {
  m.impl("gaussian_latent", &pyvi::gaussian_latent_cpu);
  m.impl("gaussian_latent_backward", &pyvi::gaussian_latent_backward_cpu);
}

PYVI_NO_CUDA_FALLBACK("gaussian_latent")
PYVI_NO_CUDA_FALLBACK("gaussian_latent_backward")
