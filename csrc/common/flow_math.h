// Scalar helpers shared by the flow kernels (host and device): stable softplus and sigmoid.
#pragma once

#include <cmath>

#include "macros.h"

namespace pyvi {
namespace flow_math {

using std::exp;
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

}  // namespace flow_math
}  // namespace pyvi
