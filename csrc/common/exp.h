// exp(x) for x <= 0: the one implementation of the "exp" similarity, compiled for the
// CPU kernels (vectorised: plain arithmetic, floor and a bit-built 2^n) and for the GPU
// (nvcc --fmad=false: no contraction), so every pair's similarity is the same float on
// both devices. Cephes' expf polynomial, ~2 ulp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "host_device.h"

namespace augcore {

AUGCORE_HOST_DEVICE float float_from_bits(int32_t bits) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(bits);
#else
  return __builtin_bit_cast(float, bits);
#endif
}

AUGCORE_HOST_DEVICE float floor_float(float v) {
#if defined(__CUDA_ARCH__)
  return floorf(v);
#else
  return std::floor(v);
#endif
}

AUGCORE_HOST_DEVICE float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;  // below this expf underflows; keeps 2^n in range. NaN stays NaN on both devices
  const float fn = floor_float(x * 1.44269504088896341f + 0.5f);
  x = x - fn * 0.693359375f + fn * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * x * x + x + 1.0f;
  return y * float_from_bits((static_cast<int32_t>(fn) + 127) << 23);
}

// A squared distance as the similarities use it: NaN and anything above FLT_MAX (an
// overflowed sum) count as FLT_MAX, the farthest, so every similarity is finite.
AUGCORE_HOST_DEVICE float finite_sqdist(float d2) { return d2 <= 3.402823466e38f ? d2 : 3.402823466e38f; }

}  // namespace augcore
