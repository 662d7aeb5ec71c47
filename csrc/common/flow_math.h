// Scalar helpers shared by the flow kernels (host and device): stable softplus and sigmoid.
#pragma once

#include <cmath>

#include "macros.h"

namespace pyvi {
namespace flow_math {

using std::exp;
using std::expm1;
using std::log;
using std::log1p;
using std::tanh;

/// log(1 + e^x) without overflow for large x or loss of precision for very negative x.
template <typename T>
PYVI_HOST_DEVICE T softplus(T x) {
  const T positive = x > T(0) ? x : T(0);
  const T magnitude = x > T(0) ? x : -x;
  return positive + log1p(exp(-magnitude));
}

/// 1 / (1 + e^-x), evaluated on the side where the exponential cannot overflow.
template <typename T>
PYVI_HOST_DEVICE T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

/// tanh(a) and 1 - tanh(a)^2 from one exp (several times cheaper than tanh in glibc), and 1 - h^2
/// without the cancellation of 1 - tanh^2 at large |a|: with e = exp(-2|a|) in (0, 1],
/// tanh|a| = (1 - e) / (1 + e) and 1 - tanh^2 = 4 e / (1 + e)^2. For tiny |a| the first loses
/// relative (not absolute) accuracy, which is all the flows need: h enters as u_hat h and h^2.
template <typename T>
PYVI_HOST_DEVICE void tanh_and_sech2(T a, T* tanh_a, T* sech2_a) {
  const T e = exp(T(-2) * (a < T(0) ? -a : a));
  const T inverse = T(1) / (T(1) + e);
  const T t = (T(1) - e) * inverse;
  *tanh_a = a < T(0) ? -t : t;
  *sech2_a = T(4) * e * inverse * inverse;
}

/// Thresholds at which LogOfProduct folds its running product into the log sum.
template <typename T>
struct ProductRange;
template <>
struct ProductRange<float> {
  static constexpr float kBig = 1e18f, kSmall = 1e-18f;
};
template <>
struct ProductRange<double> {
  static constexpr double kBig = 1e150, kSmall = 1e-150;
};

/// sum_k log(v_k) for positive v_k with one log per ~dozens of factors instead of one per factor:
/// the running product is folded into the sum only when it nears over- or underflow.
template <typename T>
struct LogOfProduct {
  T product = T(1);
  T log_sum = T(0);
  PYVI_HOST_DEVICE void multiply(T value) {
    product *= value;
    if (!(product < ProductRange<T>::kBig && product > ProductRange<T>::kSmall)) {
      log_sum += log(product);
      product = T(1);
    }
  }
  PYVI_HOST_DEVICE T value() const { return log_sum + log(product); }
};

}  // namespace flow_math
}  // namespace pyvi
