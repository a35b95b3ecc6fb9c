// Within-group pair geometry on the GPU, bit-compatible with csrc/cpu/geometry.h.
//
// Every float operation of a pair's distance is written with a round-to-nearest
// intrinsic (__fadd_rn, __fmul_rn, ...), which nvcc never contracts into an FMA, and
// the whole build uses --fmad=false (common/exp.h is plain arithmetic shared with the
// CPU). The sequence of roundings is the CPU's (built with -ffp-contract=off): the
// per-pair sum over k of (x_ik - x_jk)^2 in k order for proxies, the factored formula
// with k-ordered dot products for exact last-layer gradients, and the same exp. A pair's squared distance and
// similarity are therefore the same float32 value on the CPU and the GPU, in
// every kernel (tiled, on-the-fly, shared-memory), independent of --fmad.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/exp.h"
#include "../ops.h"
#include "utils.cuh"

namespace augcore {
namespace cuda {

// Sorted points of all groups: proxies x (N x D), optional embeddings h (N x H)
// with sq[i] = |e_i|^2 (|h_i|^2 + bias) precomputed by row_gradient_sqnorm_kernel.
struct Geometry {
  const float* x;
  const float* h;   // nullptr: proxy space
  const float* sq;  // exact mode only
  int64_t D, H;
  float bias;
};

// Squared distance -> similarity (exp or craig), as the CPU's SimilarityTransform.
struct Transform {
  int64_t kind;
  float neg_inv_scale;
  float dmax;
  __device__ __forceinline__ float operator()(float d2) const {
    const float d = __fsqrt_rn(finite_sqdist(d2));
    return kind == kExp ? exp_nonpositive(__fmul_rn(d, neg_inv_scale)) : __fsub_rn(dmax, d);
  }
};

// acc + a * b with separate roundings.
__device__ __forceinline__ float mul_add_rn(float acc, float a, float b) { return __fadd_rn(acc, __fmul_rn(a, b)); }

// The factored exact distance from its two dot products: max((A_i + A_j) - 2 <e,e'> (<h,h'> + b), 0).
__device__ __forceinline__ float exact_from_dots(float ai, float aj, float dot_e, float dot_h, float bias) {
  const float v = __fsub_rn(__fadd_rn(ai, aj), __fmul_rn(2.0f, __fmul_rn(dot_e, __fadd_rn(dot_h, bias))));
  return v > 0.0f ? v : 0.0f;  // NaN -> 0, as the CPU
}

// Squared distance between sorted rows i and j, read straight from global memory.
__device__ __forceinline__ float pair_sqdist(const Geometry& g, int64_t i, int64_t j) {
  const float* xi = g.x + i * g.D;
  const float* xj = g.x + j * g.D;
  if (g.h == nullptr) {
    float acc = 0.0f;
    for (int64_t k = 0; k < g.D; ++k) {
      const float diff = __fsub_rn(xi[k], xj[k]);
      acc = mul_add_rn(acc, diff, diff);
    }
    return acc;
  }
  float dot_e = 0.0f, dot_h = 0.0f;
  for (int64_t k = 0; k < g.D; ++k) dot_e = mul_add_rn(dot_e, xi[k], xj[k]);
  const float* hi = g.h + i * g.H;
  const float* hj = g.h + j * g.H;
  for (int64_t k = 0; k < g.H; ++k) dot_h = mul_add_rn(dot_h, hi[k], hj[k]);
  return exact_from_dots(g.sq[i], g.sq[j], dot_e, dot_h, g.bias);
}

// sq[i] = |e_i|^2 * (|h_i|^2 + bias) for all N sorted rows, sequential in k like the CPU's
// self_dot (defined in distances_cuda.cu; enqueued on `stream`).
void launch_row_gradient_sqnorm(const Geometry& g, int64_t N, float* sq, cudaStream_t stream);

// What the tile kernel does with each pair's squared distance.
enum TileOut : int { kStoreSqdist = 0, kStoreSimilarity = 1, kStoreSqdistAndMax = 2, kMaxOnly = 3 };

constexpr int kTile = 32;      // pairs per tile side
constexpr int kTileRows = 8;   // threads per tile column: each computes kTile / kTileRows pairs
constexpr int kTileK = 32;     // features staged in shared memory per round

// Tiles of the symmetric n_g x n_g blocks of every listed group, one CUDA block per tile.
// tile_ptr[u] (u < num_groups + 1) counts the tiles (T_g^2, T_g = ceil(n_g / kTile)) before the
// u-th listed group; blocks below the diagonal return at once and the upper ones also write the
// mirrored tile. out_off[u] is where group u's n^2 block starts in `out`; group_max[u] receives
// the largest squared distance (as ordered int bits, non-negative floats) for kStoreSqdistAndMax
// and kMaxOnly.
struct TileList {
  const int64_t* tile_ptr;  // (num_groups + 1,)
  const int64_t* groups;    // (num_groups,) group ids
  const int64_t* indptr;    // (G + 1,) sorted-row offsets of all groups
  const int64_t* out_off;   // (num_groups,)
  int64_t num_groups;
};

// Tile t of a TileList: the listed group u owning it (last u with tile_ptr[u] <= t), that group's
// first sorted row and size, and the tile's row/column block.
__device__ __forceinline__ void decode_tile(const TileList& list, int64_t t, int64_t& u, int64_t& base, int64_t& n,
                                            int64_t& ti, int64_t& tj) {
  int64_t lo = 0, hi = list.num_groups - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (list.tile_ptr[mid] <= t) lo = mid; else hi = mid - 1;
  }
  u = lo;
  const int64_t grp = list.groups[u];
  base = list.indptr[grp];
  n = list.indptr[grp + 1] - base;
  const int64_t T = (n + kTile - 1) / kTile, local = t - list.tile_ptr[u];
  ti = local / T;
  tj = local % T;
}

template <int kOut>
__global__ void __launch_bounds__(kTile* kTileRows)
    group_tiles_kernel(Geometry g, TileList list, Transform transform, float* __restrict__ out,
                       int* __restrict__ group_max) {
  __shared__ float a_tile[kTile][kTileK + 1];
  __shared__ float b_tile[kTile][kTileK + 1];
  __shared__ float res[kTile][kTile + 1];
  int64_t u, base, n, ti, tj;
  decode_tile(list, blockIdx.x, u, base, n, ti, tj);
  if (ti > tj) return;
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t i0 = ti * kTile, j0 = tj * kTile;
  constexpr int kPer = kTile / kTileRows;
  float acc[kPer], acc_h[kPer];
#pragma unroll
  for (int p = 0; p < kPer; ++p) acc[p] = acc_h[p] = 0.0f;

  // One pass over the features of `a` (rows of width d): acc += f(a_ik, a_jk) in k order.
  auto sweep = [&](const float* a, int64_t d, bool squared_diff, float* accum) {
    for (int64_t k0 = 0; k0 < d; k0 += kTileK) {
      const int64_t kw = min(int64_t{kTileK}, d - k0);
      for (int r = ty; r < kTile; r += kTileRows) {
        const int64_t ri = i0 + r, rj = j0 + r;
        a_tile[r][tx] = (ri < n && tx < kw) ? a[(base + ri) * d + k0 + tx] : 0.0f;
        b_tile[r][tx] = (rj < n && tx < kw) ? a[(base + rj) * d + k0 + tx] : 0.0f;
      }
      __syncthreads();
      for (int k = 0; k < kw; ++k) {
        const float bj = b_tile[tx][k];
#pragma unroll
        for (int p = 0; p < kPer; ++p) {
          const float ai = a_tile[ty + p * kTileRows][k];
          if (squared_diff) {
            const float diff = __fsub_rn(ai, bj);
            accum[p] = mul_add_rn(accum[p], diff, diff);
          } else {
            accum[p] = mul_add_rn(accum[p], ai, bj);
          }
        }
      }
      __syncthreads();
    }
  };
  if (g.h == nullptr) {
    sweep(g.x, g.D, true, acc);
  } else {
    sweep(g.x, g.D, false, acc);
    sweep(g.h, g.H, false, acc_h);
  }
  const int64_t j = j0 + tx;
  float local_max = 0.0f;
#pragma unroll
  for (int p = 0; p < kPer; ++p) {
    const int r = ty + p * kTileRows;
    const int64_t i = i0 + r;
    float d2 = acc[p];
    if (g.h != nullptr && i < n && j < n) d2 = exact_from_dots(g.sq[base + i], g.sq[base + j], acc[p], acc_h[p], g.bias);
    const bool valid = i < n && j < n;
    if (valid) local_max = fmaxf(local_max, finite_sqdist(d2));  // the CPU's craig maximum
    const float v = kOut == kStoreSimilarity ? transform(d2) : d2;
    res[r][tx] = v;
    if (kOut != kMaxOnly && valid) out[list.out_off[u] + i * n + j] = v;
  }
  if (kOut == kStoreSqdistAndMax || kOut == kMaxOnly) {
    local_max = warp_max(local_max);
    if (threadIdx.x % kWarp == 0) atomicMax(group_max + u, __float_as_int(local_max));
  }
  if (kOut == kMaxOnly || ti == tj) return;
  __syncthreads();
  // mirrored tile: (j, i) gets the value of (i, j), written row-contiguously
#pragma unroll
  for (int p = 0; p < kPer; ++p) {
    const int r = ty + p * kTileRows;
    const int64_t jj = j0 + r, ii = i0 + tx;
    if (jj < n && ii < n) out[list.out_off[u] + jj * n + ii] = res[tx][r];
  }
}

}  // namespace cuda
}  // namespace augcore
