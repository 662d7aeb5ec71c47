// Argument checks shared by the ops (TORCH_CHECK_VALUE -> ValueError, TORCH_CHECK_TYPE -> TypeError),
// each naming the argument. Every op runs its checks once, in its device-neutral <op>.cpp, before
// any kernel sees the tensors.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <initializer_list>

namespace pyvi {

/// A tensor argument and its name in the op's schema.
struct NamedTensor {
  const char* name;
  const at::Tensor& tensor;
};

/// Every tensor on the first one's device. Mixed devices would otherwise reach one device's kernel
/// (a CPU tensor beside a `meta` one dispatches to the fake kernel and returns uninitialised memory).
inline void check_same_device(const char* op, std::initializer_list<NamedTensor> args) {
  const NamedTensor& first = *args.begin();
  for (const NamedTensor& arg : args)
    TORCH_CHECK_VALUE(arg.tensor.device() == first.tensor.device(), op, ": ", arg.name, " is on ",
                      arg.tensor.device(), " but ", first.name, " is on ", first.tensor.device(),
                      "; all tensor arguments must be on one device");
}

/// float32 or float64.
inline void check_floating(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
                   " must be float32 or float64, got ", t.scalar_type());
}

/// The dtype of `like` (named like_name).
inline void check_dtype_of(const at::Tensor& t, const char* name, const at::Tensor& like, const char* like_name) {
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), name, " must have the dtype of ", like_name, " (",
                   like.scalar_type(), "), got ", t.scalar_type());
}

}  // namespace pyvi
