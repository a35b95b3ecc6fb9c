// Segmented facility-location greedy on the GPU: one thread block per group runs
// every greedy step, all groups of a launch at once.
//
// Where a group's similarities live is decided on the host (facility_location/cuda_launch_plan.h,
// tested in CPU builds):
//   shared:     n^2 floats fit in the block's shared memory: computed there from the
//               points at kernel start (no global n x n at all);
//   global:     a dense n x n block in a workspace filled by the tile kernel, groups
//               packed into batches of at most `memory_limit` bytes (auto mode), or the
//               caller's precomputed blocks;
//   on-the-fly: recomputed from the points at every use: O(n) memory per group.
// Each pair's similarity is the CPU's float32 value bit for bit (geometry.cuh).
//
// Two variants of the greedy kernel, chosen per call by AUGCORE_CUDA_GREEDY (host code in
// facility_location/cuda_launch_plan.cpp):
//   v1 (default): a step evaluates its candidates (all remaining ones for naive and lazy, the
//      counter-based sample for stochastic) in chunks of kCandidateChunk: warps take
//      (candidate, 256-point block) tasks, reduce the block's fixed-point terms
//      (common/fixed_point.h) with a shuffle tree and add them to the candidate's
//      shared-memory sum with an integer atomic; "lazy" is evaluated naively.
//   v2 (compiled, not yet run on a GPU; the default once gpu_check.sh has shown it equal to the
//      CPU op): one candidate per warp with 8 scalar or 4 float4 loads a lane in flight, the
//      greedy state through real shared-memory pointers (a template argument), no per-candidate
//      shared sums, atomics or 64-bit division; "lazy" is an exact batched lazy greedy.
// Integer sums do not depend on order, so every gain is the CPU kernel's value exactly in
// both variants, and so are the picks (the larger gain; an exact tie to the smaller index, or
// the larger with tie_break high). Lazy with tie_break high or apricot (those libraries'
// LazyGreedy) is CPU-only; apricot's naive and stochastic ties are the smaller index's.
//
// Streams: everything runs on the current torch stream. The only host work is
// reading the host indptr/budgets and one pinned, non-blocking copy of the launch
// plan; nothing waits for the device, except that precomputed similarities are
// checked (finite, non-negative) with one synchronisation. Timings are device
// seconds between stream-ordered %globaltimer stamps, returned as a CUDA tensor.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cooperative_groups.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "../common/fixed_point.h"
#include "../common/rng.h"
#include "../facility_location/cuda_launch_plan.h"
#include "../facility_location/plan.h"
#include "../ops.h"
#include "geometry.cuh"

namespace augcore {
namespace cuda {
namespace {

constexpr int64_t kGainBlockGpu = 256;  // v1: points per warp task
constexpr int kScalarLoads = 8;         // v2: row loads a thread issues before using them (scalar gains, commit)
constexpr int kVectorLoads = 4;         // v2: float4 row loads a lane issues before using them (16 floats)

struct GreedyArgs {
  Geometry geo;
  Transform transform;
  const int64_t* groups;       // (L,) group ids of this launch
  const int64_t* indptr;       // (G + 1,)
  const int64_t* budgets;      // (G,)
  const int64_t* sel_ptr;      // (G + 1,)
  const int64_t* sample_size;  // (G,) stochastic sample size, computed on the host like the CPU's
  const int64_t* s_off;        // (L,) offset of each group's dense block in S (global rows)
  const float* S;              // dense similarity blocks (global rows)
  const int* group_max;        // (L,) craig: largest squared distance as int bits (global and on-the-fly rows)
  float* m_work;               // (N,) when the greedy state does not fit in shared memory
  int* rem_work;               // (N,)
  long long* bound_work;       // (N,) v2 lazy: each candidate's fixed-point upper bound, same condition
  int* stamp_work;             // (N,) v2 lazy: the step that last evaluated each candidate
  int64_t candidate_cap;       // v2 cluster: the most candidates a step of the launch evaluates
  int64_t method;
  bool ties_high;  // exact ties in gain go to the larger index
  bool precomputed;
  uint64_t seed;
  bool state_in_shared;
  int64_t* picks;
  double* gains;
  int64_t* gamma;
  int64_t* assignment;  // holds each point's pick rank during the greedy, then its medoid's position
  double* objective;
};

// Larger gain wins; exact ties go to the smaller index, or the larger one with ties_high (the CPU's rules).
__device__ __forceinline__ bool better(long long g, int i, long long g_other, int i_other, bool ties_high) {
  return g > g_other || (g == g_other && (ties_high ? i > i_other : i < i_other));
}

__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The block's largest value of `v` (all threads call; every thread gets the result).
template <typename Shared>
__device__ float block_max(float v, Shared& sh) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_max(v);
  if (lane == 0) sh.warp_max[warp] = v;
  __syncthreads();
  float mx = 0.0f;
  for (int w = 0; w < kGreedyWarpCount; ++w) mx = fmaxf(mx, sh.warp_max[w]);
  __syncthreads();
  return mx;
}

// The start of a group, shared by both variants: its similarities computed into shared memory
// (shared rows; craig: distances, max, then transform), craig's d_max into `tr`, the fixed point
// from an upper bound on the group's similarities (the CPU's bound), and the greedy state reset.
template <int kRows, typename Shared>
__device__ FixedPoint start_group(const GreedyArgs& a, Shared& sh, int64_t u, int64_t base, int64_t n, float* S_sh,
                                  const float* S_g, float* m, int* rem, int64_t* assign, Transform& tr) {
  const int tid = threadIdx.x;
  if (kRows == kRowsShared) {
    // n^2 floats fit in shared memory, so 32-bit indices (no 64-bit division)
    const bool craig = tr.kind == kCraig;
    const int nn = static_cast<int>(n);
    float local_max = 0.0f;
    for (int t = tid; t < nn * nn; t += kGreedyThreads) {
      const float d2 = pair_sqdist(a.geo, base + t / nn, base + t % nn);
      local_max = fmaxf(local_max, finite_sqdist(d2));
      S_sh[t] = craig ? d2 : tr(d2);
    }
    if (craig) {
      tr.dmax = __fsqrt_rn(block_max(local_max, sh));
      for (int64_t t = tid; t < n * n; t += kGreedyThreads) S_sh[t] = tr(S_sh[t]);
    }
  }
  if (kRows != kRowsShared && tr.kind == kCraig) tr.dmax = __fsqrt_rn(__int_as_float(a.group_max[u]));
  float bound = tr.kind == kExp ? 1.0f : tr.dmax;
  if (a.precomputed) {
    float local_max = 0.0f;
    for (int64_t t = tid; t < n * n; t += kGreedyThreads) local_max = fmaxf(local_max, S_g[t]);
    bound = block_max(local_max, sh);
  }
  for (int64_t i = tid; i < n; i += kGreedyThreads) {
    m[i] = 0.0f;
    rem[i] = static_cast<int>(i);
    assign[i] = -1;
  }
  if (tid == 0) sh.objective = 0;
  return fixed_point_for(n, bound);
}

// Stochastic step: the partial Fisher-Yates on rem. Draws in parallel (they depend on (seed, group,
// step, j) and r only), swaps in order by one thread, exactly as the CPU does them.
template <typename Shared>
__device__ void stochastic_sample(const GreedyArgs& a, Shared& sh, int* rem, int64_t grp, int64_t step, int64_t r,
                                  int64_t count) {
  const int tid = threadIdx.x;
  for (int64_t j0 = 0; j0 < count; j0 += kGreedyThreads) {
    const int64_t j = j0 + tid;
    if (j < count)
      sh.draws[tid] = static_cast<int>(
          j + static_cast<int64_t>(uniform_below(counter_hash(a.seed, static_cast<uint64_t>(grp),
                                                               static_cast<uint64_t>(step), static_cast<uint64_t>(j)),
                                                  static_cast<uint64_t>(r - j))));
    __syncthreads();
    if (tid == 0) {
      const int64_t w = min(int64_t{kGreedyThreads}, count - j0);
      for (int64_t v = 0; v < w; ++v) {
        const int t = sh.draws[v];
        const int tmp = rem[j0 + v];
        rem[j0 + v] = rem[t];
        rem[t] = tmp;
      }
    }
    __syncthreads();
  }
}

// Thread 0: the warps' results (warp_q < 0: none) merged into the step's best. Returns whether any
// warp had one.
template <typename Shared>
__device__ bool merge_warp_bests(Shared& sh, bool ties_high) {
  bool any = false;
  for (int w = 0; w < kGreedyWarpCount; ++w)
    if (sh.warp_q[w] >= 0) {
      any = true;
      if (sh.best_q < 0 || better(sh.warp_gain[w], sh.warp_idx[w], sh.best_gain, sh.best_idx, ties_high)) {
        sh.best_gain = sh.warp_gain[w];
        sh.best_idx = sh.warp_idx[w];
        sh.best_q = sh.warp_q[w];
      }
    }
  return any;
}

// After a step's evaluation (every thread, after a barrier): records the pick, swap-removes it
// from rem (as the CPU) and commits it: a point moves to the pick only if it is strictly more
// similar (ties stay with the earlier pick; at the first step every point moves). kLoadsInFlight
// (v2): a thread's kScalarLoads similarities are loaded before they are used, and "first pick" is
// the step number (assign[i] < 0 exactly at step 0), so assign is not loaded; v1 keeps its loop.
// The block commits the points [lo, hi) (a cluster block its slice; else the group), m points at
// m[lo], and `record` says whether this block writes the pick and its gain (a cluster's rank 0).
// The host makes 1 <= count <= r at every step and gains are integers >= 0, so a best exists;
// should that ever fail, the group stops with picks -1 and NaN gains in its unfilled slots instead
// of writing rem[-1]. Returns false then (uniform: every thread read best_q after the same barrier).
template <bool kLoadsInFlight, typename Shared, typename Sim>
__device__ bool take_best(const GreedyArgs& a, const Shared& sh, int64_t base, int64_t sel, int64_t step, int64_t k,
                          int64_t r, int64_t lo, int64_t hi, bool record, const FixedPoint& fp, float* m, int* rem,
                          int64_t* assign, Sim sim) {
  const int tid = threadIdx.x;
  if (sh.best_q < 0) {
    if (tid == 0 && record)
      for (int64_t s = step; s < k; ++s) {
        a.picks[sel + s] = -1;
        a.gains[sel + s] = __longlong_as_double(0x7ff8000000000000LL);
      }
    return false;
  }
  const int64_t c = sh.best_idx;
  if (tid == 0) {
    if (record) {
      a.picks[sel + step] = base + c;
      a.gains[sel + step] = from_fixed(sh.best_gain, fp);
    }
    rem[sh.best_q] = rem[r - 1];
  }
  if (!kLoadsInFlight) {
    for (int64_t i = lo + tid; i < hi; i += kGreedyThreads) {
      const float s = sim(c, i);
      if (assign[i] < 0 || s > m[i - lo]) {
        assign[i] = step;
        m[i - lo] = fmaxf(m[i - lo], s);
      }
    }
    __syncthreads();
    return true;
  }
  for (int64_t i0 = lo + tid; i0 < hi; i0 += int64_t{kGreedyThreads} * kScalarLoads) {
    float s[kScalarLoads];
#pragma unroll
    for (int v = 0; v < kScalarLoads; ++v) {
      const int64_t i = i0 + v * kGreedyThreads;
      s[v] = i < hi ? sim(c, i) : 0.0f;
    }
#pragma unroll
    for (int v = 0; v < kScalarLoads; ++v) {
      const int64_t i = i0 + v * kGreedyThreads;
      if (i < hi && (step == 0 || s[v] > m[i - lo])) {
        assign[i] = step;
        m[i - lo] = fmaxf(m[i - lo], s[v]);
      }
    }
  }
  __syncthreads();
  return true;
}

// The end of the points [lo, hi) of a group (m points at m[lo]): ranks -> medoid positions, gamma
// counts, and the fixed-point objective of the points added to *objective (integer sums, order-free).
__device__ void finish_points(const GreedyArgs& a, int64_t sel, int64_t lo, int64_t hi, const FixedPoint& fp,
                              const float* m, int64_t* assign, unsigned long long* objective) {
  const int tid = threadIdx.x, lane = tid % kWarp;
  unsigned long long obj = 0;
  for (int64_t i = lo + tid; i < hi; i += kGreedyThreads) {
    const int64_t rank = assign[i];
    if (rank < 0) continue;  // only after take_best stopped the group before its first pick
    assign[i] = a.picks[sel + rank];
    atomicAdd(reinterpret_cast<unsigned long long*>(a.gamma + sel + rank), 1ULL);
    obj += static_cast<unsigned long long>(to_fixed(m[i - lo], fp));
  }
  obj = warp_sum_u64(obj);
  if (lane == 0) atomicAdd(objective, obj);
}

// The end of a group run by one block.
template <typename Shared>
__device__ void finish_group(const GreedyArgs& a, Shared& sh, int64_t grp, int64_t sel, int64_t n,
                             const FixedPoint& fp, const float* m, int64_t* assign) {
  const int tid = threadIdx.x;
  finish_points(a, sel, 0, n, fp, m, assign, &sh.objective);
  __syncthreads();
  if (tid == 0) a.objective[grp] = from_fixed(static_cast<long long>(sh.objective), fp);
}

// s_ci for local candidate c and local point i (candidate-major, as the CPU's rows).
template <int kRows>
struct Similarity {
  const float* S;  // the group's n x n block: shared or global rows
  Geometry geo;
  Transform tr;
  int64_t base, n;
  __device__ __forceinline__ float operator()(int64_t c, int64_t i) const {
    if (kRows == kRowsShared) return S[c * n + i];
    if (kRows == kRowsGlobal) return __ldg(S + c * n + i);
    return tr(pair_sqdist(geo, base + c, base + i));
  }
};

template <int kRows>
__global__ void __launch_bounds__(kGreedyThreads, 1) greedy_kernel(GreedyArgs a) {
  extern __shared__ __align__(16) unsigned char dyn[];
  __shared__ GreedyShared sh;

  const int64_t u = blockIdx.x, grp = a.groups[u];
  const int64_t base = a.indptr[grp], n = a.indptr[grp + 1] - base, k = a.budgets[grp], sel = a.sel_ptr[grp];
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;

  unsigned char* cursor = dyn;
  float* S_sh = nullptr;
  if (kRows == kRowsShared) {
    S_sh = reinterpret_cast<float*>(cursor);
    cursor += n * n * sizeof(float);
  }
  float* m = a.state_in_shared ? reinterpret_cast<float*>(cursor) : a.m_work + base;
  int* rem = a.state_in_shared ? reinterpret_cast<int*>(cursor + n * sizeof(float)) : a.rem_work + base;
  int64_t* assign = a.assignment + base;
  const float* S_g = kRows == kRowsGlobal ? a.S + a.s_off[u] : nullptr;
  Transform tr = a.transform;
  const FixedPoint fp = start_group<kRows>(a, sh, u, base, n, S_sh, S_g, m, rem, assign, tr);
  __syncthreads();
  const Similarity<kRows> sim{kRows == kRowsShared ? S_sh : S_g, a.geo, tr, base, n};

  const bool stochastic = a.method == kStochastic;
  const int64_t nb = (n + kGainBlockGpu - 1) / kGainBlockGpu;
  for (int64_t step = 0; step < k; ++step) {
    const int64_t r = n - step;
    const int64_t count = stochastic ? min(r, a.sample_size[grp]) : r;
    if (stochastic) stochastic_sample(a, sh, rem, grp, step, r, count);
    if (tid == 0) {
      sh.best_gain = -1;
      sh.best_idx = -1;
      sh.best_q = -1;
    }
    __syncthreads();  // take_best reads best_q even when no chunk runs
    // chunks of kCandidateChunk: warps take (candidate, 256-point block) tasks, add into gain_sum
    for (int64_t q0 = 0; q0 < count; q0 += kCandidateChunk) {
      const int64_t cc = min(int64_t{kCandidateChunk}, count - q0);
      for (int64_t uc = tid; uc < cc; uc += kGreedyThreads) sh.gain_sum[uc] = 0;
      __syncthreads();
      for (int64_t task = warp; task < cc * nb; task += kGreedyWarpCount) {
        const int64_t uc = task / nb, b = task % nb;
        const int64_t c = rem[q0 + uc];
        const int64_t i_end = min(n, (b + 1) * kGainBlockGpu);
        unsigned long long acc = 0;
        for (int64_t i = b * kGainBlockGpu + lane; i < i_end; i += kWarp) {
          const float d = __fsub_rn(sim(c, i), m[i]);
          acc += static_cast<unsigned long long>(to_fixed(d > 0.0f ? d : 0.0f, fp));
        }
        acc = warp_sum_u64(acc);
        if (lane == 0) atomicAdd(&sh.gain_sum[uc], acc);  // integer: the order of the adds does not matter
      }
      __syncthreads();
      long long g = -1;
      int idx = -1, q = -1;
      for (int64_t uc = tid; uc < cc; uc += kGreedyThreads) {
        const long long total = static_cast<long long>(sh.gain_sum[uc]);
        const int c = rem[q0 + uc];
        if (q < 0 || better(total, c, g, idx, a.ties_high)) {
          g = total;
          idx = c;
          q = static_cast<int>(q0 + uc);
        }
      }
      for (int off = kWarp / 2; off > 0; off /= 2) {
        const long long og = __shfl_down_sync(0xffffffffu, g, off);
        const int oi = __shfl_down_sync(0xffffffffu, idx, off);
        const int oq = __shfl_down_sync(0xffffffffu, q, off);
        if (oq >= 0 && (q < 0 || better(og, oi, g, idx, a.ties_high))) {
          g = og;
          idx = oi;
          q = oq;
        }
      }
      if (lane == 0) {
        sh.warp_gain[warp] = g;
        sh.warp_idx[warp] = idx;
        sh.warp_q[warp] = q;
      }
      __syncthreads();
      if (tid == 0) merge_warp_bests(sh, a.ties_high);
      __syncthreads();  // gain sums and warp results are reused by the next chunk
    }
    if (!take_best<false>(a, sh, base, sel, step, k, r, 0, n, true, fp, m, rem, assign, sim)) break;
  }
  finish_group(a, sh, grp, sel, n, fp, m, assign);
}

// ---- v2 (AUGCORE_CUDA_GREEDY=v2; compiled, not yet run on a GPU) --------------------------------

// The fixed-point gain of local candidate c over the points [lo, lo + len) (the group, or a cluster
// block's slice; m points at m[lo]), summed by one warp (every lane gets it): lane l takes points
// lo + l, lo + l + 32, ... (scalar path: kScalarLoads loads a lane issued before their terms are
// formed) or float4 groups l, l + 32, ... of the range (vector path, when `vector` says the rows and
// m are 16-byte aligned and n % 4 == 0; lo and len are then multiples of 4: kVectorLoads float4
// loads of the row and of m in flight). Padding terms are max(0, 0 - 0) = 0. Integer sums: the
// lanes' order and the shuffle tree cannot change the value.
template <int kRows>
__device__ __forceinline__ long long warp_gain(const Similarity<kRows>& sim, const float* m, int c, int lo, int len,
                                               const FixedPoint& fp, bool vector) {
  const int lane = threadIdx.x % kWarp;
  const auto term = [&](float s, float mi) {
    const float d = __fsub_rn(s, mi);
    return static_cast<unsigned long long>(to_fixed(d > 0.0f ? d : 0.0f, fp));
  };
  unsigned long long acc = 0;
  if (kRows != kRowsOnTheFly && vector) {
    const float4* row = reinterpret_cast<const float4*>(sim.S + static_cast<int64_t>(c) * sim.n + lo);
    const float4* m4 = reinterpret_cast<const float4*>(m);
    const int n4 = len / 4;
    for (int j0 = lane; j0 < n4; j0 += kWarp * kVectorLoads) {
      float4 s[kVectorLoads], mm[kVectorLoads];
#pragma unroll
      for (int v = 0; v < kVectorLoads; ++v) {
        const int j = j0 + v * kWarp;
        const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        s[v] = j < n4 ? (kRows == kRowsGlobal ? __ldg(row + j) : row[j]) : zero;
        mm[v] = j < n4 ? m4[j] : zero;
      }
#pragma unroll
      for (int v = 0; v < kVectorLoads; ++v)
        acc += term(s[v].x, mm[v].x) + term(s[v].y, mm[v].y) + term(s[v].z, mm[v].z) + term(s[v].w, mm[v].w);
    }
  } else {
    for (int i0 = lane; i0 < len; i0 += kWarp * kScalarLoads) {
      float s[kScalarLoads], mm[kScalarLoads];
#pragma unroll
      for (int v = 0; v < kScalarLoads; ++v) {
        const int i = i0 + v * kWarp;
        s[v] = i < len ? sim(c, lo + i) : 0.0f;
        mm[v] = i < len ? m[i] : 0.0f;
      }
#pragma unroll
      for (int v = 0; v < kScalarLoads; ++v) acc += term(s[v], mm[v]);
    }
  }
  return static_cast<long long>(warp_sum_u64(acc));
}

// The best (gain, index, position) of a warp's lanes (q < 0: none), in every lane.
__device__ __forceinline__ void reduce_best_in_warp(long long& g, int& idx, int& q, bool ties_high) {
  for (int off = kWarp / 2; off > 0; off /= 2) {
    const long long og = __shfl_xor_sync(0xffffffffu, g, off);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, off);
    const int oq = __shfl_xor_sync(0xffffffffu, q, off);
    if (oq >= 0 && (q < 0 || better(og, oi, g, idx, ties_high))) {
      g = og;
      idx = oi;
      q = oq;
    }
  }
}

// The warp's best (bound, index, position) over its share of rem[0, r): positions whose 32-wide
// chunk number is the warp's modulo the warp count, not yet evaluated at `step` (every lane gets it).
__device__ __forceinline__ void warp_best_stale(const int* rem, const long long* bound, const int* stamp, int64_t r,
                                                int64_t step, bool ties_high, long long& g, int& idx, int& q) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  g = -1;
  idx = -1;
  q = -1;
  for (int64_t p = warp * kWarp + lane; p < r; p += kGreedyThreads) {
    const int c = rem[p];
    if (stamp[c] == step) continue;
    if (q < 0 || better(bound[c], c, g, idx, ties_high)) {
      g = bound[c];
      idx = c;
      q = static_cast<int>(p);
    }
  }
  reduce_best_in_warp(g, idx, q, ties_high);
}

// One block per group, as v1, but one candidate per warp: a warp evaluates a whole candidate
// (warp_gain), keeps its candidates' best in registers, and the block merges 16 warp results once
// a step (no per-candidate shared sums, no atomics, no division). kStateShared: m and rem (and the
// lazy bounds) are in shared memory, reached through pointers the compiler knows are shared.
//
// Lazy (exact batched lazy greedy): every candidate keeps an upper bound on its gain (its last
// fresh gain; gains only shrink as m grows, and each fixed-point term is monotone in m). In rounds,
// each warp takes the best stale candidate of its share of rem and evaluates it if its bound beats
// the step's best fresh gain so far; the step ends when no warp has such a candidate. Then every
// unevaluated candidate's gain is <= its bound, which loses to the best fresh (gain, index) under
// the tie rule, so the pick is naive's pick, and its gain is the same integer.
template <int kRows, bool kStateShared>
__global__ void __launch_bounds__(kGreedyThreads, 1) greedy_v2_kernel(GreedyArgs a) {
  extern __shared__ __align__(16) unsigned char dyn[];
  __shared__ GreedyV2Shared sh;

  const int64_t u = blockIdx.x, grp = a.groups[u];
  const int64_t base = a.indptr[grp], n = a.indptr[grp + 1] - base, k = a.budgets[grp], sel = a.sel_ptr[grp];
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
  const bool lazy = a.method == kLazy, stochastic = a.method == kStochastic;

  // dynamic shared memory: [lazy bounds (8n) | rows (4n^2) | m (4n) | rem (4n) | lazy stamps (4n)]
  unsigned char* cursor = dyn;
  long long* bound = kStateShared ? reinterpret_cast<long long*>(cursor) : a.bound_work + base;
  if (kStateShared && lazy) cursor += n * sizeof(long long);
  float* S_sh = nullptr;
  if (kRows == kRowsShared) {
    S_sh = reinterpret_cast<float*>(cursor);
    cursor += n * n * sizeof(float);
  }
  float* m = kStateShared ? reinterpret_cast<float*>(cursor) : a.m_work + base;
  int* rem = kStateShared ? reinterpret_cast<int*>(cursor + n * sizeof(float)) : a.rem_work + base;
  int* stamp = kStateShared ? reinterpret_cast<int*>(cursor + 2 * n * sizeof(float)) : a.stamp_work + base;
  int64_t* assign = a.assignment + base;
  const float* S_g = kRows == kRowsGlobal ? a.S + a.s_off[u] : nullptr;
  Transform tr = a.transform;
  const FixedPoint fp = start_group<kRows>(a, sh, u, base, n, S_sh, S_g, m, rem, assign, tr);
  if (lazy)
    for (int64_t i = tid; i < n; i += kGreedyThreads) {
      bound[i] = LLONG_MAX;  // never evaluated: the first step evaluates every candidate
      stamp[i] = -1;
    }
  __syncthreads();
  const Similarity<kRows> sim{kRows == kRowsShared ? S_sh : S_g, a.geo, tr, base, n};
  // the vector path needs every row and m 16-byte aligned: n % 4 == 0 and aligned starts (block-uniform)
  const float* rows0 = kRows == kRowsShared ? S_sh : S_g;
  const bool vector = kRows != kRowsOnTheFly && n % 4 == 0 &&
                      (reinterpret_cast<uintptr_t>(rows0) | reinterpret_cast<uintptr_t>(m)) % 16 == 0;
  const int ni = static_cast<int>(n);

  for (int64_t step = 0; step < k; ++step) {
    const int64_t r = n - step;
    const int64_t count = stochastic ? min(r, a.sample_size[grp]) : r;
    if (stochastic) stochastic_sample(a, sh, rem, grp, step, r, count);
    if (tid == 0) {
      sh.best_gain = -1;
      sh.best_idx = -1;
      sh.best_q = -1;
    }
    __syncthreads();
    if (!lazy) {
      long long g = -1;
      int idx = -1, q = -1;
      for (int64_t p = warp; p < count; p += kGreedyWarpCount) {
        const int c = rem[p];
        const long long gain = warp_gain(sim, m, c, 0, ni, fp, vector);
        if (q < 0 || better(gain, c, g, idx, a.ties_high)) {
          g = gain;
          idx = c;
          q = static_cast<int>(p);
        }
      }
      if (lane == 0) {
        sh.warp_gain[warp] = g;
        sh.warp_idx[warp] = idx;
        sh.warp_q[warp] = q;
      }
      __syncthreads();
      if (tid == 0) merge_warp_bests(sh, a.ties_high);
      __syncthreads();
    } else {
      do {
        long long b;
        int c, p;
        warp_best_stale(rem, bound, stamp, r, step, a.ties_high, b, c, p);
        // sh.best_* is only written by thread 0 between the two barriers below
        const bool evaluate = p >= 0 && (sh.best_q < 0 || better(b, c, sh.best_gain, sh.best_idx, a.ties_high));
        long long gain = -1;
        if (evaluate) {
          gain = warp_gain(sim, m, c, 0, ni, fp, vector);
          if (lane == 0) {
            bound[c] = gain;
            stamp[c] = static_cast<int>(step);
          }
        }
        if (lane == 0) {
          sh.warp_gain[warp] = gain;
          sh.warp_idx[warp] = c;
          sh.warp_q[warp] = evaluate ? p : -1;
        }
        __syncthreads();
        if (tid == 0) sh.evaluated = merge_warp_bests(sh, a.ties_high);
        __syncthreads();
      } while (sh.evaluated);  // uniform: read after the barrier, rewritten only after the next one
    }
    if (!take_best<true>(a, sh, base, sel, step, k, r, 0, n, true, fp, m, rem, assign, sim)) break;
  }
  finish_group(a, sh, grp, sel, n, fp, m, assign);
}

// ---- v2 over a thread-block cluster per group (sm_90; compiled, not yet run on a GPU) ----------
// The C blocks of a group's cluster split its points: block `rank` owns the slice [lo, hi)
// (cluster_slice), keeps m for those points only and commits picks on them; rem is replicated (every
// block runs the same Fisher-Yates and swap-remove). A step: each block forms every candidate's
// partial gain over its points (one candidate per warp, warp_gain), the cluster syncs, and every
// block sums each candidate's C partials from the blocks' shared memory (distributed shared memory,
// integers, in rank order) and takes the argmax under the tie rule (the (gain, index) pairs are
// distinct, so every block gets the same pick however it reduces). Rank 0 records the pick. The
// partials alternate between two buffers, so one cluster.sync a step suffices: a block writes a
// buffer again two steps later, after every block has passed the sync that follows its reads of it.
// Naive and stochastic with global or on-the-fly rows; the host plans (plan_clusters) and launches
// it only on sm_90, so on sm_80 its body is a trap.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// Block `rank`'s value of the shared variable at `p` (an address in this block's shared memory, the
// same offset in every block of the cluster), read through the cluster's shared window. Volatile with
// a memory clobber: the compiler keeps it between the cluster barriers that order it.
__device__ __forceinline__ unsigned cluster_address(const void* p, int rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;"
               : "=r"(remote)
               : "r"(static_cast<unsigned>(__cvta_generic_to_shared(p))), "r"(rank));
  return remote;
}
__device__ __forceinline__ unsigned long long load_cluster_u64(const void* p, int rank) {
  unsigned long long v;
  asm volatile("ld.shared::cluster.u64 %0, [%1];" : "=l"(v) : "r"(cluster_address(p, rank)) : "memory");
  return v;
}
__device__ __forceinline__ unsigned load_cluster_u32(const void* p, int rank) {
  unsigned v;
  asm volatile("ld.shared::cluster.u32 %0, [%1];" : "=r"(v) : "r"(cluster_address(p, rank)) : "memory");
  return v;
}
#endif

template <int kRows>
__global__ void __launch_bounds__(kGreedyThreads, 1) greedy_v2_cluster_kernel(GreedyArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  const cg::cluster_group cluster = cg::this_cluster();
  extern __shared__ __align__(16) unsigned char dyn[];
  __shared__ GreedyV2Shared sh;

  const int C = static_cast<int>(cluster.num_blocks()), rank = static_cast<int>(cluster.block_rank());
  const int64_t u = blockIdx.x / C, grp = a.groups[u];
  const int64_t base = a.indptr[grp], n = a.indptr[grp + 1] - base, k = a.budgets[grp], sel = a.sel_ptr[grp];
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
  const bool stochastic = a.method == kStochastic;
  const int ni = static_cast<int>(n), slice = cluster_slice(ni, C);
  const int64_t lo = min(ni, rank * slice), hi = min(ni, static_cast<int>(lo) + slice);

  // dynamic shared memory (cluster_dynamic_bytes): [partials 2 x candidate_cap | m slice | rem (n)]
  unsigned long long* partials = reinterpret_cast<unsigned long long*>(dyn);
  float* m = reinterpret_cast<float*>(dyn + 16 * a.candidate_cap);
  int* rem = reinterpret_cast<int*>(dyn + 16 * a.candidate_cap + 4 * slice);
  int64_t* assign = a.assignment + base;
  const float* S_g = kRows == kRowsGlobal ? a.S + a.s_off[u] : nullptr;
  Transform tr = a.transform;
  if (tr.kind == kCraig) tr.dmax = __fsqrt_rn(__int_as_float(a.group_max[u]));
  float bound = tr.kind == kExp ? 1.0f : tr.dmax;
  if (a.precomputed) {  // the largest similarity of the group: each block its candidates' rows, then the cluster's
    float local_max = 0.0f;
    for (int64_t t = lo * n + tid; t < hi * n; t += kGreedyThreads) local_max = fmaxf(local_max, S_g[t]);
    local_max = block_max(local_max, sh);
    if (tid == 0) sh.group_bound = local_max;
    cluster.sync();
    bound = 0.0f;
    for (int b = 0; b < C; ++b) bound = fmaxf(bound, __uint_as_float(load_cluster_u32(&sh.group_bound, b)));
  }
  const FixedPoint fp = fixed_point_for(n, bound);
  for (int64_t i = lo + tid; i < hi; i += kGreedyThreads) {
    m[i - lo] = 0.0f;
    assign[i] = -1;
  }
  for (int64_t i = tid; i < n; i += kGreedyThreads) rem[i] = static_cast<int>(i);
  if (tid == 0) sh.objective = 0;
  __syncthreads();
  const Similarity<kRows> sim{S_g, a.geo, tr, base, n};
  const bool vector = kRows == kRowsGlobal && n % 4 == 0 &&
                      (reinterpret_cast<uintptr_t>(S_g) | reinterpret_cast<uintptr_t>(m)) % 16 == 0;

  for (int64_t step = 0; step < k; ++step) {
    const int64_t r = n - step;
    const int64_t count = stochastic ? min(r, a.sample_size[grp]) : r;
    if (stochastic) stochastic_sample(a, sh, rem, grp, step, r, count);
    unsigned long long* partial = partials + (step % 2) * a.candidate_cap;
    for (int64_t p = warp; p < count; p += kGreedyWarpCount) {
      const long long gain = warp_gain(sim, m, rem[p], static_cast<int>(lo), static_cast<int>(hi - lo), fp, vector);
      if (lane == 0) partial[p] = static_cast<unsigned long long>(gain);
    }
    cluster.sync();  // every block's partials of this step are written and visible
    long long g = -1;
    int idx = -1, q = -1;
    for (int64_t p = tid; p < count; p += kGreedyThreads) {
      unsigned long long total = 0;
      for (int b = 0; b < C; ++b) total += load_cluster_u64(partial + p, b);
      const int c = rem[p];
      if (q < 0 || better(static_cast<long long>(total), c, g, idx, a.ties_high)) {
        g = static_cast<long long>(total);
        idx = c;
        q = static_cast<int>(p);
      }
    }
    reduce_best_in_warp(g, idx, q, a.ties_high);
    if (lane == 0) {
      sh.warp_gain[warp] = g;
      sh.warp_idx[warp] = idx;
      sh.warp_q[warp] = q;
    }
    if (tid == 0) {
      sh.best_gain = -1;
      sh.best_idx = -1;
      sh.best_q = -1;
    }
    __syncthreads();
    if (tid == 0) merge_warp_bests(sh, a.ties_high);
    __syncthreads();
    if (!take_best<true>(a, sh, base, sel, step, k, r, lo, hi, rank == 0, fp, m, rem, assign, sim)) break;
  }
  cluster.sync();  // rank 0's picks (global memory) are visible to every block of the cluster
  finish_points(a, sel, lo, hi, fp, m, assign, cluster.map_shared_rank(&sh.objective, 0));
  cluster.sync();  // every block's objective is in rank 0's sum; no block reads another's memory after this
  if (rank == 0 && tid == 0) a.objective[grp] = from_fixed(static_cast<long long>(sh.objective), fp);
#else
  __trap();  // sm_80: the host never plans clusters there
#endif
}

__global__ void craig_transform_kernel(TileList list, const int* __restrict__ group_max, float* __restrict__ S) {
  int64_t u, base, n, ti, tj;
  decode_tile(list, blockIdx.x, u, base, n, ti, tj);
  const float dmax = __fsqrt_rn(__int_as_float(group_max[u]));
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t j = tj * kTile + tx;
  for (int r = ty; r < kTile; r += kTileRows) {
    const int64_t i = ti * kTile + r;
    if (i < n && j < n) {
      float* v = S + list.out_off[u] + i * n + j;
      *v = __fsub_rn(dmax, __fsqrt_rn(finite_sqdist(*v)));
    }
  }
}

// Device clock in nanoseconds, written by a one-thread kernel: stream order makes it
// the time at which everything enqueued before it has finished.
__global__ void stamp_kernel(unsigned long long* slot) {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  *slot = t;
}

// stamps: 3 per launch (before similarities, before greedy, after greedy) -> seconds [similarity, greedy].
__global__ void timings_kernel(const unsigned long long* stamps, int64_t launches, double* seconds) {
  double sim = 0.0, greedy = 0.0;
  for (int64_t w = 0; w < launches; ++w) {
    sim += 1e-9 * static_cast<double>(stamps[3 * w + 1] - stamps[3 * w]);
    greedy += 1e-9 * static_cast<double>(stamps[3 * w + 2] - stamps[3 * w + 1]);
  }
  seconds[0] = sim;
  seconds[1] = greedy;
}

// A greedy kernel's static shared memory on `device` after raising its dynamic limit, once per
// kernel, device and process, to all that the opt-in limit leaves beside the static part (the
// default, 48 KB, counts static and dynamic together). Once and under a lock: setting the
// attribute at every launch raced between host threads sharing a device.
int64_t prepare_greedy_kernel(void (*kernel)(GreedyArgs), int device, int optin) {
  static std::mutex mutex;
  static std::map<std::pair<void (*)(GreedyArgs), int>, int64_t> static_bytes;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(kernel, device);
  auto found = static_bytes.find(key);
  if (found == static_bytes.end()) {
    cudaFuncAttributes attr{};
    C10_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
    const int dynamic_max = std::max(0, optin - static_cast<int>(attr.sharedSizeBytes));
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dynamic_max));
    found = static_bytes.emplace(key, static_cast<int64_t>(attr.sharedSizeBytes)).first;
  }
  return found->second;
}

// The kernel that runs a launch: v1 by rows; v2 by rows and where the state lives.
void (*greedy_kernel_for(int variant, int rows, bool state_in_shared))(GreedyArgs) {
  if (variant == kGreedyV1)
    return rows == kRowsShared ? greedy_kernel<kRowsShared>
                               : rows == kRowsGlobal ? greedy_kernel<kRowsGlobal> : greedy_kernel<kRowsOnTheFly>;
  if (rows == kRowsShared) return greedy_v2_kernel<kRowsShared, true>;  // shared rows always have shared state
  if (rows == kRowsGlobal)
    return state_in_shared ? greedy_v2_kernel<kRowsGlobal, true> : greedy_v2_kernel<kRowsGlobal, false>;
  return state_in_shared ? greedy_v2_kernel<kRowsOnTheFly, true> : greedy_v2_kernel<kRowsOnTheFly, false>;
}

// v2's cluster kernel for global or on-the-fly rows.
void (*greedy_cluster_kernel_for(int rows))(GreedyArgs) {
  return rows == kRowsGlobal ? greedy_v2_cluster_kernel<kRowsGlobal> : greedy_v2_cluster_kernel<kRowsOnTheFly>;
}

// Every kernel of `variant`, for preparing them all before planning.
std::vector<void (*)(GreedyArgs)> greedy_kernels(int variant) {
  std::vector<void (*)(GreedyArgs)> kernels;
  for (int rows : {kRowsShared, kRowsGlobal, kRowsOnTheFly})
    for (bool state_in_shared : {true, false})
      if (state_in_shared || rows != kRowsShared) kernels.push_back(greedy_kernel_for(variant, rows, state_in_shared));
  if (variant == kGreedyV2)
    for (int rows : {kRowsGlobal, kRowsOnTheFly}) kernels.push_back(greedy_cluster_kernel_for(rows));
  return kernels;
}

// The largest cluster both cluster kernels can launch on `device` with `dynamic_bytes` of dynamic
// shared memory a block (the GPCs' free SMs decide it), at most kMaxClusterSize; 1 below sm_90.
// Queried once per device and size, under a lock; the non-portable sizes (9-16) are allowed first.
int64_t max_cluster_size(int device, int64_t dynamic_bytes) {
  static std::mutex mutex;
  static std::map<std::pair<int, int64_t>, int64_t> sizes;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(device, dynamic_bytes);
  auto found = sizes.find(key);
  if (found != sizes.end()) return found->second;
  int major = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  int64_t widest = 1;
  if (major >= 9) {
    widest = kMaxClusterSize;
    for (int rows : {kRowsGlobal, kRowsOnTheFly}) {
      const auto kernel = greedy_cluster_kernel_for(rows);
      C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(static_cast<unsigned>(kMaxClusterSize));
      config.blockDim = dim3(kGreedyThreads);
      config.dynamicSmemBytes = static_cast<size_t>(dynamic_bytes);
      int size = 0;
      C10_CUDA_CHECK(cudaOccupancyMaxPotentialClusterSize(&size, kernel, &config));
      widest = std::min<int64_t>(widest, size);
    }
  }
  return sizes.emplace(key, widest).first->second;
}

}  // namespace
}  // namespace cuda

FacilityLocationOut facility_location_cuda(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                           const std::optional<at::Tensor>& similarity, const at::Tensor& indptr,
                                           const at::Tensor& budgets, int64_t similarity_kind, double scale,
                                           double bias, int64_t method, double eps, int64_t seed, int64_t mode,
                                           int64_t memory_limit, int64_t tie_break) {
  using namespace cuda;
  TORCH_CHECK_VALUE(x.is_cuda(), "facility_location: x must be a CUDA tensor here");
  const FacilityLocationPlan plan =
      plan_facility_location(x, embeddings, similarity, indptr, budgets, similarity_kind, scale, bias, method, eps,
                             mode, memory_limit, tie_break);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t G = plan.G, N = plan.N, D = plan.D, H = plan.H;
  const int64_t* p = plan.p;
  const int64_t* kb = plan.k;
  const std::vector<int64_t>& sel_ptr = plan.sel_ptr;
  const std::vector<int64_t>& sim_ptr = plan.sim_ptr;
  TORCH_CHECK_VALUE(similarity_kind != kCraigSquared,
                    "facility_location: similarity_kind 3 (craig_squared) runs on CPU tensors only");
  TORCH_CHECK_VALUE(N < INT_MAX, "facility_location: at most 2^31 - 1 points on the GPU, got ", N);
  const int variant = greedy_variant_from_env();  // AUGCORE_CUDA_GREEDY
  const int tile_variant = tile_variant_from_env();  // AUGCORE_CUDA_TILES
  TORCH_CHECK_VALUE(tie_break == kTiesLow || method != kLazy,
                    "facility_location: method 1 (lazy) with tie_break 1 (high, submodlib's LazyGreedy) or 2 "
                    "(apricot's LazyGreedy) runs on CPU tensors only");
  const bool precomputed = similarity_kind == kPrecomputed;
  if (precomputed && similarity->numel() > 0) {
    // one synchronisation: the fixed point needs finite, non-negative similarities
    const bool ok = at::logical_and(at::isfinite(*similarity), at::ge(*similarity, 0)).all().item<bool>();
    TORCH_CHECK_VALUE(ok, "facility_location: similarity must be finite and non-negative");
  }
  const float* hs = embeddings ? embeddings->data_ptr<float>() : nullptr;
  const float* sim = precomputed ? similarity->data_ptr<float>() : nullptr;
  // the CPU's sample size, evaluated on the host so that both devices agree exactly
  std::vector<int64_t> sample(G, 0);
  for (int64_t g = 0; g < G; ++g)
    if (kb[g] > 0) sample[g] = stochastic_sample_size(p[g + 1] - p[g], kb[g], eps);

  const int64_t K = sel_ptr[G];
  const auto lopts = x.options().dtype(at::kLong), dopts = x.options().dtype(at::kDouble);
  auto selected = at::empty({K}, lopts);
  auto gains = at::empty({K}, dopts);
  auto gamma = at::zeros({K}, lopts);
  auto assignment = at::full({N}, -1, lopts);
  auto objective = at::zeros({G}, dopts);
  auto timings = at::zeros({2}, dopts);
  if (K == 0) return {selected, gains, gamma, assignment, objective, timings};

  // --- the launch plan (host code shared with CPU builds, see facility_location/cuda_launch_plan.h) -----------
  const int device = x.device().index();
  int optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  // the plan asks for at most opt-in minus the largest static part, which every kernel of the variant allows
  int64_t static_bytes = 0;
  for (auto kernel : greedy_kernels(variant))
    static_bytes = std::max(static_bytes, prepare_greedy_kernel(kernel, device, optin));
  const bool lazy_state = greedy_state_bytes_per_point(variant, method) != kStateBytesPerPoint;
  CudaLaunchPlan launch_plan = plan_cuda_launches(p, kb, G, precomputed, mode, memory_limit, optin, static_bytes,
                                                  greedy_state_bytes_per_point(variant, method));
  if (variant == kGreedyV2) {  // several SMs per group where the device has clusters (sm_90)
    const int64_t dynamic_max = std::max<int64_t>(0, optin - static_bytes);
    int sm_count = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    const std::vector<int64_t> candidates = step_candidates(p, kb, G, method, eps);
    // AUGCORE_CUDA_CLUSTER caps it (1: one block per group, to compare with clusters)
    const int64_t widest = std::min(max_cluster_size(device, dynamic_max), cluster_cap_from_env());
    plan_clusters(launch_plan, candidates.data(), method, sm_count, widest, dynamic_max);
  }
  const std::vector<int64_t>& list = launch_plan.groups;
  const std::vector<GreedyLaunch>& launches = launch_plan.launches;

  // Metadata, one pinned non-blocking copy: [indptr | budgets | sel_ptr | sample | list | per-listed
  // s_off | tile_ptr per launch]. Per-listed offsets are relative to the launch's workspace.
  const int64_t L = static_cast<int64_t>(list.size());
  std::vector<int64_t> meta;
  meta.insert(meta.end(), p, p + G + 1);
  meta.insert(meta.end(), kb, kb + G);
  meta.insert(meta.end(), sel_ptr.begin(), sel_ptr.end());
  meta.insert(meta.end(), sample.begin(), sample.end());
  const int64_t list_at = static_cast<int64_t>(meta.size());
  meta.insert(meta.end(), list.begin(), list.end());
  const int64_t off_at = static_cast<int64_t>(meta.size());
  for (const GreedyLaunch& l : launches) {
    int64_t off = 0;
    for (int64_t v = l.first; v < l.first + l.count; ++v) {
      const int64_t g = list[v], n = p[g + 1] - p[g];
      meta.push_back(precomputed ? sim_ptr[g] : off);
      off += n * n;
    }
  }
  std::vector<int64_t> tile_at(launches.size());
  for (size_t w = 0; w < launches.size(); ++w) {
    tile_at[w] = static_cast<int64_t>(meta.size());
    int64_t tiles = 0;
    meta.push_back(0);
    for (int64_t v = launches[w].first; v < launches[w].first + launches[w].count; ++v) {
      const int64_t n = p[list[v] + 1] - p[list[v]], T = (n + kTile - 1) / kTile;
      tiles += T * T;
      meta.push_back(tiles);
    }
    // only launches that run the tile kernel (a grid of `tiles` blocks) are bound by the grid limit
    const bool launches_tiles = (launches[w].rows == kRowsGlobal && !precomputed) ||
                                (launches[w].rows == kRowsOnTheFly && similarity_kind == kCraig);
    TORCH_CHECK_VALUE(!launches_tiles || tiles < (int64_t{1} << 31), "facility_location: too many 32 x 32 tiles (",
                      tiles, ") for one launch; lower memory_limit or use mode='on_the_fly'");
  }
  auto meta_dev = at::from_blob(meta.data(), {static_cast<int64_t>(meta.size())}, at::kLong)
                      .pin_memory()
                      .to(x.device(), /*non_blocking=*/true);
  const int64_t* md = meta_dev.data_ptr<int64_t>();

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const auto fopts = x.options().dtype(at::kFloat);
  Geometry geo{x.data_ptr<float>(), hs, nullptr, D, H, static_cast<float>(bias)};
  at::Tensor sq;
  if (hs != nullptr && !precomputed) {
    sq = at::empty({N}, fopts);
    geo.sq = sq.data_ptr<float>();
    launch_row_gradient_sqnorm(geo, N, sq.data_ptr<float>(), stream);
  }
  const bool craig = similarity_kind == kCraig;
  const Transform transform{similarity_kind, static_cast<float>(-1.0 / scale), 0.0f};
  auto group_max = at::zeros({std::max<int64_t>(L, 1)}, x.options().dtype(at::kInt));
  at::Tensor workspace = at::empty({launch_plan.max_workspace_floats}, fopts);  // reused batch after batch
  at::Tensor m_work, rem_work, bound_work, stamp_work;
  if (launch_plan.needs_state_workspace) {
    m_work = at::empty({N}, fopts);
    rem_work = at::empty({N}, x.options().dtype(at::kInt));
    if (lazy_state) {
      bound_work = at::empty({N}, lopts);
      stamp_work = at::empty({N}, x.options().dtype(at::kInt));
    }
  }
  auto stamps = at::zeros({3 * static_cast<int64_t>(launches.size())}, lopts);
  auto* stamp = reinterpret_cast<unsigned long long*>(stamps.data_ptr<int64_t>());

  GreedyArgs args{};
  args.geo = geo;
  args.transform = transform;
  args.indptr = md;
  args.budgets = md + G + 1;
  args.sel_ptr = md + 2 * G + 1;
  args.sample_size = md + 3 * G + 2;
  args.method = method;
  args.ties_high = tie_break == kTiesHigh;
  args.precomputed = precomputed;
  args.seed = static_cast<uint64_t>(seed);
  args.picks = selected.data_ptr<int64_t>();
  args.gains = gains.data_ptr<double>();
  args.gamma = gamma.data_ptr<int64_t>();
  args.assignment = assignment.data_ptr<int64_t>();
  args.objective = objective.data_ptr<double>();

  for (size_t w = 0; w < launches.size(); ++w) {
    const GreedyLaunch& l = launches[w];
    TileList tl{md + tile_at[w], md + list_at + l.first, md, md + off_at + l.first, l.count};
    int* gmax = group_max.data_ptr<int>() + l.first;
    const int64_t tiles = meta[tile_at[w] + l.count];
    stamp_kernel<<<1, 1, 0, stream>>>(stamp + 3 * w);
    if (l.rows == kRowsGlobal && !precomputed) {
      float* S = workspace.data_ptr<float>();
      if (craig) {
        launch_group_tiles<kStoreSqdistAndMax>(tile_variant, tiles, geo, tl, transform, S, gmax, stream);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        craig_transform_kernel<<<static_cast<unsigned>(tiles), kTileThreadsV1, 0, stream>>>(tl, gmax, S);
      } else {
        launch_group_tiles<kStoreSimilarity>(tile_variant, tiles, geo, tl, transform, S, nullptr, stream);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (l.rows == kRowsOnTheFly && craig) {
      launch_group_tiles<kMaxOnly>(tile_variant, tiles, geo, tl, transform, nullptr, gmax, stream);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    stamp_kernel<<<1, 1, 0, stream>>>(stamp + 3 * w + 1);
    args.groups = md + list_at + l.first;
    args.s_off = md + off_at + l.first;
    args.S = precomputed ? sim : (l.rows == kRowsGlobal ? workspace.data_ptr<float>() : nullptr);
    args.group_max = gmax;
    args.state_in_shared = l.state_in_shared;
    args.m_work = l.state_in_shared ? nullptr : m_work.data_ptr<float>();
    args.rem_work = l.state_in_shared ? nullptr : rem_work.data_ptr<int>();
    const bool lazy_workspace = lazy_state && !l.state_in_shared;
    args.bound_work = lazy_workspace ? reinterpret_cast<long long*>(bound_work.data_ptr<int64_t>()) : nullptr;
    args.stamp_work = lazy_workspace ? stamp_work.data_ptr<int>() : nullptr;
    args.candidate_cap = l.candidate_cap;
    if (l.cluster_size > 1) {
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(static_cast<unsigned>(l.count * l.cluster_size));
      config.blockDim = dim3(kGreedyThreads);
      config.dynamicSmemBytes = static_cast<size_t>(l.dynamic_shared_bytes);
      config.stream = stream;
      cudaLaunchAttribute cluster{};
      cluster.id = cudaLaunchAttributeClusterDimension;
      cluster.val.clusterDim.x = static_cast<unsigned>(l.cluster_size);
      cluster.val.clusterDim.y = 1;
      cluster.val.clusterDim.z = 1;
      config.attrs = &cluster;
      config.numAttrs = 1;
      C10_CUDA_CHECK(cudaLaunchKernelEx(&config, greedy_cluster_kernel_for(l.rows), args));
    } else {
      const auto kernel = greedy_kernel_for(variant, l.rows, l.state_in_shared);
      kernel<<<static_cast<unsigned>(l.count), kGreedyThreads, static_cast<size_t>(l.dynamic_shared_bytes), stream>>>(
          args);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    stamp_kernel<<<1, 1, 0, stream>>>(stamp + 3 * w + 2);
  }
  timings_kernel<<<1, 1, 0, stream>>>(stamp, static_cast<int64_t>(launches.size()), timings.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {selected, gains, gamma, assignment, objective, timings};
}

}  // namespace augcore
