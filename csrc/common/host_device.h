// AUGCORE_HOST_DEVICE: one inline function for the CPU build and for nvcc's host and device passes.
#pragma once

#if defined(__CUDACC__)
#define AUGCORE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define AUGCORE_HOST_DEVICE inline
#endif
