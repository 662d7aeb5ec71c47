// What the native samplers ask of a target, and the list of targets pyvi._core knows.
//
// A target is a struct with
//   int64_t dim() const;
//   double log_prob_and_grad(const double* x, double* grad) const;  // log p(x), writes d log p/dx
//   static constexpr int kDim = d;       // optional: a compile-time dimension (unrolled loops,
//                                        // state in registers, chains in interleaved groups)
//   static void bind(pybind11::module_& m);  // its Python class (constructor with validation)
//   void repair_gradient(const double* x, double* grad) const;  // optional: fixes a gradient the
//                                        // fast formula left NaN where a term overflowed; batch
//                                        // evaluation calls it, the samplers do not (a NaN gradient
//                                        // ends a trajectory as an infinite one does: divergent)
// and the samplers are templates over it. Adding a built-in target is its own header here plus
// its name in NativeTargets (targets/registry.hpp).
#pragma once

#include <type_traits>
#include <utility>

namespace pyvi {

template <class Target, class = void>
struct HasFixedDim : std::false_type {};
template <class Target>
struct HasFixedDim<Target, std::void_t<decltype(Target::kDim)>> : std::true_type {};

template <class Target, class = void>
struct HasGradientRepair : std::false_type {};
template <class Target>
struct HasGradientRepair<Target, std::void_t<decltype(std::declval<const Target&>().repair_gradient(
                                     static_cast<const double*>(nullptr), static_cast<double*>(nullptr)))>>
    : std::true_type {};

/// A compile-time list of target types (see targets/registry.hpp).
template <class... Targets>
struct TargetList {
  /// Calls f(static_cast<T*>(nullptr)) for each type T of the list, in order (a type tag).
  template <class F>
  static void for_each(F&& f) {
    (f(static_cast<Targets*>(nullptr)), ...);
  }
};

}  // namespace pyvi
