// Portability macros shared by the torch-free core (pyvi._core) and the torch ops (pyvi._C).
//
// The per-sample math lives in headers marked PYVI_HOST_DEVICE so that one definition serves the
// C++ core, the CPU torch kernels and the CUDA kernels: CPU tests then cover the CUDA math too.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYVI_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define PYVI_HOST_DEVICE inline
#endif
