// The targets pyvi._core knows: each gets its Python class and the log_prob_and_grad, leapfrog and
// hmc overloads (hmc_bindings.cpp). Adding one: its header in this folder and its name below.
#pragma once

#include "banana.hpp"
#include "callback.hpp"
#include "funnel.hpp"
#include "gaussian.hpp"
#include "gaussian_mixture.hpp"
#include "hybrid_rosenbrock.hpp"
#include "target.hpp"

namespace pyvi {

using NativeTargets = TargetList<BananaTarget, GaussianTarget, FunnelTarget, GaussianMixtureTarget,
                                 HybridRosenbrockTarget, CallbackTarget>;

}  // namespace pyvi
