// The targets pyvi._core knows: each gets its Python class and the log_prob_and_grad, leapfrog and
// hmc overloads (hmc_bindings.cpp). Adding one: its header in this folder and its name below.
#pragma once

#include "banana.hpp"
#include "callback.hpp"
#include "gaussian.hpp"
#include "target.hpp"

namespace pyvi {

using NativeTargets = TargetList<BananaTarget, GaussianTarget, CallbackTarget>;

}  // namespace pyvi
