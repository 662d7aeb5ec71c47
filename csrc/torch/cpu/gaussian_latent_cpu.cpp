// CPU kernels of pyvi::gaussian_latent: the posterior heads (two (L, H) linear maps of the hidden
// units), z = mu + exp(log_var / 2) eps and the analytic KL, forward and backward, one pass over
// the hidden units per image (math in ../../common/gaussian_latent.h). Dots run in 16 independent
// lanes and the gradient updates are axpys over H, so both vectorise without reassociation flags;
// every sum has one fixed order whatever the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstdint>

#include "../../common/gaussian_latent.h"
#include "../gaussian_latent.h"
#include "isa.h"

namespace pyvi {

namespace {

constexpr int64_t kRowGrain = 16;

/// sum_k a[k] b[k] in 16 independent lanes (vectorisable without reassociating).
template <typename scalar_t>
PYVI_ALWAYS_INLINE scalar_t dot(const scalar_t* a, const scalar_t* b, int64_t n) {
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
PYVI_ALWAYS_INLINE void forward_rows(const Forward<scalar_t>& a, int64_t begin, int64_t end) {
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


template <typename scalar_t>
struct Backward {
  const scalar_t *d_mu, *d_lv, *h, *w_mu, *w_lv;
  scalar_t *grad_h, *grad_w_mu, *grad_w_lv;
  int64_t batch, hidden, latent;
};

/// grad_h[b, :] = sum_l d_mu[b, l] w_mu[l, :] + d_lv[b, l] w_lv[l, :] for the rows [begin, end).
template <typename scalar_t>
PYVI_ALWAYS_INLINE void grad_h_rows(const Backward<scalar_t>& a, int64_t begin, int64_t end) {
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
PYVI_ALWAYS_INLINE void grad_w_columns(const Backward<scalar_t>& a, int64_t begin, int64_t end) {
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


}  // namespace

void gaussian_latent_cpu(const LatentForward& t) {
  const int64_t batch = t.h.size(0), hidden = t.h.size(1), latent = t.w_mu.size(0);
  AT_DISPATCH_FLOATING_TYPES(t.h.scalar_type(), "gaussian_latent_cpu", [&] {
    const Forward<scalar_t> args{t.h.const_data_ptr<scalar_t>(),         t.w_mu.const_data_ptr<scalar_t>(),
                                 t.b_mu.const_data_ptr<scalar_t>(),      t.w_log_var.const_data_ptr<scalar_t>(),
                                 t.b_log_var.const_data_ptr<scalar_t>(), t.eps.const_data_ptr<scalar_t>(),
                                 t.z.mutable_data_ptr<scalar_t>(),       t.kl.mutable_data_ptr<scalar_t>(),
                                 t.mu.mutable_data_ptr<scalar_t>(),      t.log_var.mutable_data_ptr<scalar_t>(),
                                 hidden,                                 latent};
    at::parallel_for(0, batch, kRowGrain, [&](int64_t begin, int64_t end) {
      cpu::dispatch<&forward_rows<scalar_t>>(args, begin, end);
    });
  });
}

void gaussian_latent_backward_cpu(const LatentBackward& t) {
  const int64_t batch = t.h.size(0), hidden = t.h.size(1), latent = t.w_mu.size(0);
  at::Tensor d_mu = at::empty({batch, latent}, t.h.options()), d_lv = at::empty({batch, latent}, t.h.options());
  AT_DISPATCH_FLOATING_TYPES(t.h.scalar_type(), "gaussian_latent_backward_cpu", [&] {
    const scalar_t* gz = t.grad_z.const_data_ptr<scalar_t>();
    const scalar_t* gk = t.grad_kl.const_data_ptr<scalar_t>();
    const scalar_t* gm = t.grad_mu.const_data_ptr<scalar_t>();
    const scalar_t* gv = t.grad_log_var.const_data_ptr<scalar_t>();
    const scalar_t* m = t.mu.const_data_ptr<scalar_t>();
    const scalar_t* v = t.log_var.const_data_ptr<scalar_t>();
    const scalar_t* e = t.eps.const_data_ptr<scalar_t>();
    scalar_t* dm = d_mu.mutable_data_ptr<scalar_t>();
    scalar_t* dv = d_lv.mutable_data_ptr<scalar_t>();
    scalar_t* de = t.grad_eps.mutable_data_ptr<scalar_t>();
    scalar_t* gbm = t.grad_b_mu.mutable_data_ptr<scalar_t>();  // zeroed by the op
    scalar_t* gbv = t.grad_b_log_var.mutable_data_ptr<scalar_t>();
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
                                  t.h.const_data_ptr<scalar_t>(),
                                  t.w_mu.const_data_ptr<scalar_t>(),
                                  t.w_log_var.const_data_ptr<scalar_t>(),
                                  t.grad_h.mutable_data_ptr<scalar_t>(),
                                  t.grad_w_mu.mutable_data_ptr<scalar_t>(),
                                  t.grad_w_log_var.mutable_data_ptr<scalar_t>(),
                                  batch,
                                  hidden,
                                  latent};
    at::parallel_for(0, batch, kRowGrain, [&](int64_t begin, int64_t end) {
      cpu::dispatch<&grad_h_rows<scalar_t>>(args, begin, end);
    });
    at::parallel_for(0, hidden, 128, [&](int64_t begin, int64_t end) {
      cpu::dispatch<&grad_w_columns<scalar_t>>(args, begin, end);
    });
  });
}

}  // namespace pyvi
