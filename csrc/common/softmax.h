// The arithmetic of the gradient proxies, shared by the CPU and CUDA kernels so that both
// return the same float32 outputs bit for bit (docs/gpu.md, "Determinism"):
//   - exp of z_c - max z: exp_nonpositive (common/exp.h); ln of the softmax denominator
//     (a sum in [1, C]): log_at_least_one below. No libm/CUDA exp or log (they differ).
//   - every row sum in one fixed order, the one a warp's shuffle tree gives: term c goes to
//     lane c mod 32, each lane adds its terms in increasing c, then lane l adds lane l + 16,
//     then l + 8, 4, 2, 1 (a halving tree). The GPU runs it with a warp (warp_sum), the CPU
//     with 32 accumulators (lane_order_sum).
// float64 inputs keep float64 differences, sums and quotients; exp and ln are still the float
// polynomials (outputs are float32 either way). Every operation is separately rounded: the
// CPU build uses -ffp-contract=off, the CUDA build --fmad=false.
#pragma once
#include <cstdint>

#include "exp.h"
#include "host_device.h"

namespace augcore {

constexpr int kSumLanes = 32;  // a warp

AUGCORE_HOST_DEVICE int32_t bits_from_float(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(v);
#else
  return __builtin_bit_cast(int32_t, v);
#endif
}

// ln(x) for a finite x >= 1 (normal, positive: what the softmax denominator is). Cephes'
// logf: x = f 2^e with f in [sqrt(1/2), sqrt(2)), a degree-9 polynomial in f - 1, and
// e ln 2 added in two parts.
AUGCORE_HOST_DEVICE float log_at_least_one(float x) {
  const int32_t bits = bits_from_float(x);
  int e = ((bits >> 23) & 0xff) - 126;                      // x = f 2^e, f in [0.5, 1)
  float f = float_from_bits((bits & 0x007fffff) | 0x3f000000);
  if (f < 0.707106781186547524f) {
    e -= 1;
    f = f + f - 1.0f;
  } else {
    f = f - 1.0f;
  }
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  const float fe = static_cast<float>(e);
  y = y + -2.12194440e-4f * fe;
  y = y + -0.5f * z;
  f = f + y;
  return f + 0.693359375f * fe;
}

// exp(d) for d <= 0 and ln(t) for t >= 1 in the accumulation type (float, or double for
// float64 inputs), through the float polynomials.
template <typename acc_t>
AUGCORE_HOST_DEVICE acc_t softmax_exp(acc_t d) {
  return static_cast<acc_t>(exp_nonpositive(static_cast<float>(d)));
}
template <typename acc_t>
AUGCORE_HOST_DEVICE acc_t softmax_log(acc_t t) {
  return static_cast<acc_t>(log_at_least_one(static_cast<float>(t)));
}

// The row maximum with -0 made +0, so that a tie between -0 and +0 (which the order of a
// reduction decides) cannot change any later result.
template <typename acc_t>
AUGCORE_HOST_DEVICE acc_t canonical_max(acc_t v) {
  return v + acc_t(0);
}

// sum over c in [0, C) of term(c), in the warp order above (CPU side).
template <typename acc_t, typename Term>
inline acc_t lane_order_sum(int64_t C, Term term) {
  acc_t lane[kSumLanes] = {};
  for (int64_t c = 0; c < C; ++c) lane[c % kSumLanes] += term(c);
  for (int width = kSumLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
  return lane[0];
}

}  // namespace augcore
