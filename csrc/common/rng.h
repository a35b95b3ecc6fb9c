// Counter-based random numbers shared by the CPU and CUDA greedy kernels.
//
// A draw depends only on (seed, group, step, j), never on thread scheduling, so
// the stochastic greedy makes the same picks on every device and thread count.
// augcore/ops/reference.py implements the same functions in Python.
#pragma once
#include <cstdint>

#include "host_device.h"

namespace augcore {

AUGCORE_HOST_DEVICE uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The j-th 64-bit draw of greedy step `step` in group `group`.
AUGCORE_HOST_DEVICE uint64_t counter_hash(uint64_t seed, uint64_t group, uint64_t step, uint64_t j) {
  return splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ group) ^ step) ^ j);
}

// Maps a draw to [0, r) with a 64x64->128 multiply-high.
AUGCORE_HOST_DEVICE uint64_t uniform_below(uint64_t h, uint64_t r) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(h, r);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(h) * r) >> 64);
#endif
}

}  // namespace augcore
