// CPU instruction-set dispatch, the one mechanism every op's CPU kernels use.
//
// pyvi is built for the baseline x86-64 ISA (no -march flag: the binary runs on any x86-64 CPU),
// and its hot loops run in copies compiled for x86-64-v3 (AVX2 + FMA: 4 doubles or 8 floats per
// instruction, fused multiply-adds) and, where it pays, x86-64-v4 (AVX-512; the counter RNG's
// 64-bit lane multiplies, vpmullq, need AVX-512DQ to vectorise). `cpu::dispatch<kBody, kMax>(args...)`
// calls `kBody(args...)` compiled for the best level up to kMax that the running CPU supports
// (detected once per process). The choice depends on the machine only, never on the thread count,
// so results stay identical across thread counts; across machines they can differ in the last bits
// (the v3 and v4 copies contract a * b + c into FMAs).
//
// Each level's copy is a `flatten` trampoline: kBody and everything it calls is inlined into it, so
// no part of a kernel body silently runs at the baseline ISA. Bodies are function templates or
// functions taking their data by pointer; the trampolines forward the arguments as given.
//
// Compilers: GCC >= 11 and Clang >= 12 on x86-64 (the `arch=x86-64-v3` target attribute); elsewhere,
// or with -DPYVI_NO_ISA_DISPATCH, dispatch() calls the baseline body.
#pragma once

#include <utility>

#if defined(__GNUC__)
// The bodies pass GCC vector-extension values between always-inline helpers; -Wpsabi warns about
// an ABI that can only matter for out-of-line calls.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

/// For the small vector helpers of a kernel body: always inlined, so that each ISA copy of the body
/// gets its own instructions and no vector value crosses a call.
#define PYVI_ALWAYS_INLINE [[gnu::always_inline]] inline

#if defined(__x86_64__) && !defined(PYVI_NO_ISA_DISPATCH) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define PYVI_ISA_DISPATCH 1
#endif

namespace pyvi::cpu {

/// Instruction-set levels, in increasing order (the x86-64 psABI micro-architecture levels).
enum class Isa : int { kBaseline = 0, kX86_64_V3 = 3, kX86_64_V4 = 4 };

#ifdef PYVI_ISA_DISPATCH
namespace detail {

inline Isa detect_isa() {
  __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
  // GCC >= 12 tests the whole level, exactly as its target_clones resolver does.
  if (__builtin_cpu_supports("x86-64-v4")) return Isa::kX86_64_V4;
  if (__builtin_cpu_supports("x86-64-v3")) return Isa::kX86_64_V3;
#else
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
                  __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  if (v4) return Isa::kX86_64_V4;
  if (v3) return Isa::kX86_64_V3;
#endif
  return Isa::kBaseline;
}

template <auto kBody, typename... Args>
__attribute__((target("arch=x86-64-v4"), flatten)) decltype(auto) run_v4(Args&&... args) {
  return kBody(std::forward<Args>(args)...);
}

template <auto kBody, typename... Args>
__attribute__((target("arch=x86-64-v3"), flatten)) decltype(auto) run_v3(Args&&... args) {
  return kBody(std::forward<Args>(args)...);
}

}  // namespace detail
#endif

/// The best level this CPU supports (baseline where dispatch is compiled out).
inline Isa cpu_isa() {
#ifdef PYVI_ISA_DISPATCH
  static const Isa isa = detail::detect_isa();
  return isa;
#else
  return Isa::kBaseline;
#endif
}

/// kBody(args...) compiled for min(kMax, cpu_isa()).
template <auto kBody, Isa kMax = Isa::kX86_64_V3, typename... Args>
inline decltype(auto) dispatch(Args&&... args) {
#ifdef PYVI_ISA_DISPATCH
  const Isa isa = cpu_isa();
  if constexpr (kMax >= Isa::kX86_64_V4)
    if (isa >= Isa::kX86_64_V4) return detail::run_v4<kBody>(std::forward<Args>(args)...);
  if constexpr (kMax >= Isa::kX86_64_V3)
    if (isa >= Isa::kX86_64_V3) return detail::run_v3<kBody>(std::forward<Args>(args)...);
#endif
  return kBody(std::forward<Args>(args)...);
}

}  // namespace pyvi::cpu
