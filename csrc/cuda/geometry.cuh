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
#include "../facility_location/cuda_launch_plan.h"
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

constexpr int kTile = kTileSide;    // pairs per tile side
constexpr int kTileRows = 8;        // v1: threads per tile column: each computes kTile / kTileRows pairs
constexpr int kTileK = kTileSlice;  // features staged in shared memory per round
static_assert(kTile * kTileRows == kTileThreadsV1, "v1's tile threads (cuda_launch_plan.h)");

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

// The register-blocked tile kernel (AUGCORE_CUDA_TILES=blocked): the same tiles, outputs and
// values as group_tiles_kernel, from 64 threads a tile. Thread t keeps the 4 x 4 pairs
// (ty + 8p, tx + 8q), tx = t % 8, ty = t / 8, in registers; per feature it loads 4 row and 4
// column operands from the staged k-slice (a warp's 4 distinct rows and 8 distinct columns sit
// in distinct banks of the 33-float rows: one wavefront each) for 16 pairs, against v1's 5 loads
// for 4. Each pair is still one accumulator summed over k in order with the same roundings
// (mul_add_rn, __fsub_rn), so every value is v1's and the CPU's. Results go through the shared
// res tile and are written row-contiguously, the tile and its mirror.
template <bool kSquaredDiff>
__device__ __forceinline__ void blocked_sweep(const float* __restrict__ a, int64_t d, int64_t base, int64_t n,
                                              int64_t i0, int64_t j0, float (&a_tile)[kTile][kTileK + 1],
                                              float (&b_tile)[kTile][kTileK + 1],
                                              float (&acc)[kBlockRows][kBlockCols]) {
  constexpr int kRowsApart = kTile / kBlockRows, kColsApart = kTile / kBlockCols;  // 8, 8
  const int t = threadIdx.x, tx = t % kColsApart, ty = t / kColsApart;
  const int lane_k = t % kTileK;
  for (int64_t k0 = 0; k0 < d; k0 += kTileK) {
    const int kw = static_cast<int>(min(int64_t{kTileK}, d - k0));
    for (int r = t / kTileK; r < kTile; r += kTileThreadsBlocked / kTileK) {
      const int64_t ri = i0 + r, rj = j0 + r;
      a_tile[r][lane_k] = (ri < n && lane_k < kw) ? a[(base + ri) * d + k0 + lane_k] : 0.0f;
      b_tile[r][lane_k] = (rj < n && lane_k < kw) ? a[(base + rj) * d + k0 + lane_k] : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int k = 0; k < kw; ++k) {
      float ai[kBlockRows], bj[kBlockCols];
#pragma unroll
      for (int p = 0; p < kBlockRows; ++p) ai[p] = a_tile[ty + p * kRowsApart][k];
#pragma unroll
      for (int q = 0; q < kBlockCols; ++q) bj[q] = b_tile[tx + q * kColsApart][k];
#pragma unroll
      for (int p = 0; p < kBlockRows; ++p)
#pragma unroll
        for (int q = 0; q < kBlockCols; ++q) {
          if (kSquaredDiff) {
            const float diff = __fsub_rn(ai[p], bj[q]);
            acc[p][q] = mul_add_rn(acc[p][q], diff, diff);
          } else {
            acc[p][q] = mul_add_rn(acc[p][q], ai[p], bj[q]);
          }
        }
    }
    __syncthreads();
  }
}

template <int kOut>
__global__ void __launch_bounds__(kTileThreadsBlocked, 1)
    group_tiles_blocked_kernel(Geometry g, TileList list, Transform transform, float* __restrict__ out,
                               int* __restrict__ group_max) {
  __shared__ float a_tile[kTile][kTileK + 1];
  __shared__ float b_tile[kTile][kTileK + 1];
  __shared__ float res[kTile][kTile + 1];
  int64_t u, base, n, ti, tj;
  decode_tile(list, blockIdx.x, u, base, n, ti, tj);
  if (ti > tj) return;
  constexpr int kRowsApart = kTile / kBlockRows, kColsApart = kTile / kBlockCols;
  const int t = threadIdx.x, tx = t % kColsApart, ty = t / kColsApart;
  const int64_t i0 = ti * kTile, j0 = tj * kTile;
  float acc[kBlockRows][kBlockCols], acc_h[kBlockRows][kBlockCols];
#pragma unroll
  for (int p = 0; p < kBlockRows; ++p)
#pragma unroll
    for (int q = 0; q < kBlockCols; ++q) acc[p][q] = acc_h[p][q] = 0.0f;
  if (g.h == nullptr) {
    blocked_sweep<true>(g.x, g.D, base, n, i0, j0, a_tile, b_tile, acc);
  } else {
    blocked_sweep<false>(g.x, g.D, base, n, i0, j0, a_tile, b_tile, acc);
    blocked_sweep<false>(g.h, g.H, base, n, i0, j0, a_tile, b_tile, acc_h);
  }
  float local_max = 0.0f;
#pragma unroll
  for (int p = 0; p < kBlockRows; ++p)
#pragma unroll
    for (int q = 0; q < kBlockCols; ++q) {
      const int r = ty + p * kRowsApart, c = tx + q * kColsApart;
      const int64_t i = i0 + r, j = j0 + c;
      const bool valid = i < n && j < n;
      float d2 = acc[p][q];
      if (g.h != nullptr && valid) d2 = exact_from_dots(g.sq[base + i], g.sq[base + j], acc[p][q], acc_h[p][q], g.bias);
      if (valid) local_max = fmaxf(local_max, finite_sqdist(d2));  // the CPU's craig maximum
      if (kOut != kMaxOnly) res[r][c] = kOut == kStoreSimilarity ? transform(d2) : d2;
    }
  if (kOut == kStoreSqdistAndMax || kOut == kMaxOnly) {
    local_max = warp_max(local_max);
    if (t % kWarp == 0) atomicMax(group_max + u, __float_as_int(local_max));
  }
  if (kOut == kMaxOnly) return;
  __syncthreads();
  float* block_out = out + list.out_off[u];
  for (int e = t; e < kTile * kTile; e += kTileThreadsBlocked) {
    const int r = e / kTile, c = e % kTile;
    const int64_t i = i0 + r, j = j0 + c;
    if (i < n && j < n) block_out[i * n + j] = res[r][c];
    // mirrored tile: (j0 + r, i0 + c) gets the value of (i0 + c, j0 + r)
    const int64_t jj = j0 + r, ii = i0 + c;
    if (ti != tj && jj < n && ii < n) block_out[jj * n + ii] = res[c][r];
  }
}

// One launch of the tile kernel of `variant` (TileVariant) over `tiles` tiles of `list`.
template <int kOut>
void launch_group_tiles(int variant, int64_t tiles, const Geometry& g, const TileList& list,
                        const Transform& transform, float* out, int* group_max, cudaStream_t stream) {
  if (variant == kTilesBlocked)
    group_tiles_blocked_kernel<kOut><<<static_cast<unsigned>(tiles), kTileThreadsBlocked, 0, stream>>>(
        g, list, transform, out, group_max);
  else
    group_tiles_kernel<kOut><<<static_cast<unsigned>(tiles), kTileThreadsV1, 0, stream>>>(g, list, transform, out,
                                                                                          group_max);
}

}  // namespace cuda
}  // namespace augcore
