// What the native samplers ask of a target, and the list of targets pyvi._core knows.
//
// A target is a struct with
//   int64_t dim() const;
//   double log_prob_and_grad(const double* x, double* grad) const;  // log p(x), writes d log p/dx
//   static constexpr int kDim = d;       // optional: a compile-time dimension (unrolled loops,
//                                        // state in registers, chains in interleaved groups)
//   static void bind(pybind11::module_& m);  // its Python class (constructor with validation)
// and the samplers are templates over it. Adding a built-in target is its own header here plus
// its name in NativeTargets (targets/registry.hpp).
#pragma once

#include <type_traits>

namespace pyvi {

template <class Target, class = void>
struct HasFixedDim : std::false_type {};
template <class Target>
struct HasFixedDim<Target, std::void_t<decltype(Target::kDim)>> : std::true_type {};

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
