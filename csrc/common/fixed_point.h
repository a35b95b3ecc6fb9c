// Order-independent marginal gains: every term max(0, s_ic - m_i), a float32 in
// [0, bound], is rounded to a multiple of 2^-F and the terms are summed as integers.
// Integer addition is associative, so a gain has one value however it is reduced:
// SIMD lanes, threads, warps, shared-memory atomics, CPU or GPU (docs/gpu.md).
//
// F is chosen per group from its size n and an upper bound on its similarities:
// with bound < 2^e and n <= 2^L, F = min(52, 62 - L) - e. Then every term is below
// 2^min(52, 62-L), so (a) a term plus 2^(52-F) lies in one binade of doubles whose
// spacing is 2^-F: adding that "magic" constant rounds the term to nearest (ties to
// even) exactly, and the difference of the bit patterns is the rounded integer; and
// (b) n terms sum below 2^62: no int64 overflow. Float32 terms of at least
// 2^(23-F) are represented exactly; smaller ones are rounded by at most 2^-(F+1), so
// a gain is within n 2^-(F+1) of the exact sum of its float32 terms. For n = 5,000
// (L = 13) and bound 1 (e = 1): F = 48, exact from 2^-25, error <= 5000 x 2^-49 ~= 8.9e-12.
#pragma once
#include <cstdint>

#include "host_device.h"

namespace augcore {

struct FixedPoint {
  double magic;        // 2^(52 - F)
  int64_t magic_bits;  // its bit pattern
  double quantum;      // 2^-F: the value of one integer unit
};

AUGCORE_HOST_DEVICE double double_from_bits(int64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(bits);
#else
  return __builtin_bit_cast(double, bits);
#endif
}

AUGCORE_HOST_DEVICE int64_t bits_from_double(double v) {
#if defined(__CUDA_ARCH__)
  return __double_as_longlong(v);
#else
  return __builtin_bit_cast(int64_t, v);
#endif
}

AUGCORE_HOST_DEVICE double power_of_two(int e) { return double_from_bits(static_cast<int64_t>(e + 1023) << 52); }

// The fixed point of a group of n points whose similarities lie in [0, bound] (bound finite).
AUGCORE_HOST_DEVICE FixedPoint fixed_point_for(int64_t n, float bound) {
  int L = 0;
  while (L < 62 && (int64_t{1} << L) < n) ++L;
  int e = 0;  // smallest e with bound < 2^e (bound 0: any e works)
  if (bound > 0.0f) {
    e = -149;
    while (e < 128 && static_cast<double>(bound) >= power_of_two(e)) ++e;
  }
  const int F = (52 < 62 - L ? 52 : 62 - L) - e;
  FixedPoint fp;
  fp.magic = power_of_two(52 - F);
  fp.magic_bits = bits_from_double(fp.magic);
  fp.quantum = power_of_two(-F);
  return fp;
}

// round(t * 2^F) for a term t in [0, bound]. The addition is one correctly rounded
// double operation on both devices (no contraction: nothing to fuse it with).
AUGCORE_HOST_DEVICE int64_t to_fixed(float t, const FixedPoint& fp) {
#if defined(__CUDA_ARCH__)
  return __double_as_longlong(__dadd_rn(static_cast<double>(t), fp.magic)) - fp.magic_bits;
#else
  return bits_from_double(static_cast<double>(t) + fp.magic) - fp.magic_bits;
#endif
}

// A sum of fixed-point terms as a double (one rounding, to nearest, on both devices).
AUGCORE_HOST_DEVICE double from_fixed(int64_t v, const FixedPoint& fp) { return static_cast<double>(v) * fp.quantum; }

}  // namespace augcore
