// Segmented facility-location greedy on the GPU: one thread block per group runs
// every greedy step, all groups of a launch at once.
//
// Where a group's similarities live is decided on the host (cuda_launch_plan.h,
// tested in CPU builds):
//   shared:     n^2 floats fit in the block's shared memory: computed there from the
//               points at kernel start (no global n x n at all);
//   global:     a dense n x n block in a workspace filled by the tile kernel, groups
//               packed into batches of at most `memory_limit` bytes (auto mode), or the
//               caller's precomputed blocks;
//   on-the-fly: recomputed from the points at every use: O(n) memory per group.
// Each pair's similarity is the CPU's float32 value bit for bit (geometry.cuh).
//
// A step evaluates its candidates (all remaining ones for naive and lazy, the
// counter-based sample for stochastic) in chunks of kCandidateChunk: warps take
// (candidate, 256-point block) tasks, reduce the block's fixed-point terms
// (common/fixed_point.h) with a shuffle tree and add them to the candidate's
// shared-memory sum with an integer atomic. Integer sums do not depend on order, so
// every gain is the CPU kernel's value exactly, and so are the picks (the larger
// gain; an exact tie to the smaller index, or the larger with tie_break high).
// "lazy" with tie_break low is evaluated naively and returns naive's picks; lazy with
// tie_break high or apricot (those libraries' LazyGreedy) is CPU-only; apricot's naive and
// stochastic ties are the smaller index's.
//
// Streams: everything runs on the current torch stream. The only host work is
// reading the host indptr/budgets and one pinned, non-blocking copy of the launch
// plan; nothing waits for the device, except that precomputed similarities are
// checked (finite, non-negative) with one synchronisation. Timings are device
// seconds between stream-ordered %globaltimer stamps, returned as a CUDA tensor.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "../common/fixed_point.h"
#include "../common/rng.h"
#include "../cuda_launch_plan.h"
#include "../facility_location_plan.h"
#include "../ops.h"
#include "geometry.cuh"

namespace augcore {
namespace cuda {
namespace {

constexpr int64_t kGainBlockGpu = 256;  // points per warp task

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
__device__ float block_max(float v, GreedyShared& sh) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_max(v);
  if (lane == 0) sh.warp_max[warp] = v;
  __syncthreads();
  float mx = 0.0f;
  for (int w = 0; w < kGreedyWarpCount; ++w) mx = fmaxf(mx, sh.warp_max[w]);
  __syncthreads();
  return mx;
}

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

  if (kRows == kRowsShared) {
    // the group's similarities, computed once into shared memory (craig: distances, max, then transform)
    const bool craig = tr.kind == kCraig;
    float local_max = 0.0f;
    for (int64_t t = tid; t < n * n; t += kGreedyThreads) {
      const float d2 = pair_sqdist(a.geo, base + t / n, base + t % n);
      local_max = fmaxf(local_max, finite_sqdist(d2));
      S_sh[t] = craig ? d2 : tr(d2);
    }
    if (craig) {
      tr.dmax = __fsqrt_rn(block_max(local_max, sh));
      for (int64_t t = tid; t < n * n; t += kGreedyThreads) S_sh[t] = tr(S_sh[t]);
    }
  }
  if (kRows != kRowsShared && tr.kind == kCraig) tr.dmax = __fsqrt_rn(__int_as_float(a.group_max[u]));
  // an upper bound on the group's similarities fixes the fixed point (the CPU's bound)
  float bound = tr.kind == kExp ? 1.0f : tr.dmax;
  if (a.precomputed) {
    float local_max = 0.0f;
    for (int64_t t = tid; t < n * n; t += kGreedyThreads) local_max = fmaxf(local_max, S_g[t]);
    bound = block_max(local_max, sh);
  }
  const FixedPoint fp = fixed_point_for(n, bound);
  for (int64_t i = tid; i < n; i += kGreedyThreads) {
    m[i] = 0.0f;
    rem[i] = static_cast<int>(i);
    assign[i] = -1;
  }
  if (tid == 0) sh.objective = 0;
  __syncthreads();

  // s_ci for local candidate c and local point i (candidate-major, as the CPU's rows)
  auto sim = [&](int64_t c, int64_t i) -> float {
    if (kRows == kRowsShared) return S_sh[c * n + i];
    if (kRows == kRowsGlobal) return S_g[c * n + i];
    return tr(pair_sqdist(a.geo, base + c, base + i));
  };

  const bool stochastic = a.method == kStochastic;
  const int64_t nb = (n + kGainBlockGpu - 1) / kGainBlockGpu;
  for (int64_t step = 0; step < k; ++step) {
    const int64_t r = n - step;
    const int64_t count = stochastic ? min(r, a.sample_size[grp]) : r;
    if (stochastic) {
      // partial Fisher-Yates on rem: draws in parallel (they depend on (seed, group, step, j) and r
      // only), swaps in order by one thread, exactly as the CPU does them
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
    if (tid == 0) {
      sh.best_gain = -1;
      sh.best_idx = -1;
      sh.best_q = -1;
    }
    __syncthreads();  // the guard below reads best_q even when no chunk runs
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
      if (tid == 0) {
        for (int w = 0; w < kGreedyWarpCount; ++w)
          if (sh.warp_q[w] >= 0 &&
              (sh.best_q < 0 || better(sh.warp_gain[w], sh.warp_idx[w], sh.best_gain, sh.best_idx, a.ties_high))) {
            sh.best_gain = sh.warp_gain[w];
            sh.best_idx = sh.warp_idx[w];
            sh.best_q = sh.warp_q[w];
          }
      }
      __syncthreads();  // gain sums and warp results are reused by the next chunk
    }
    // The host makes 1 <= count <= r at every step (k <= n, sample size clamped to [1, n]), and
    // gains are integers >= 0, so best_q >= 0 here. Should that ever fail, the group stops with
    // picks -1 and NaN gains in its unfilled slots instead of writing rem[-1].
    if (sh.best_q < 0) {
      if (tid == 0)
        for (int64_t s = step; s < k; ++s) {
          a.picks[sel + s] = -1;
          a.gains[sel + s] = __longlong_as_double(0x7ff8000000000000LL);
        }
      break;  // uniform: every thread read best_q after the same barrier
    }
    const int64_t c = sh.best_idx;
    if (tid == 0) {
      a.picks[sel + step] = base + c;
      a.gains[sel + step] = from_fixed(sh.best_gain, fp);
      rem[sh.best_q] = rem[r - 1];  // swap-remove, as the CPU
    }
    // commit: a point moves to c only if c is strictly more similar (ties stay with the earlier pick)
    for (int64_t i = tid; i < n; i += kGreedyThreads) {
      const float s = sim(c, i);
      if (assign[i] < 0 || s > m[i]) {
        assign[i] = step;
        m[i] = fmaxf(m[i], s);
      }
    }
    __syncthreads();
  }

  // ranks -> medoid positions, gamma counts and the objective: integer sums, order-free
  unsigned long long obj = 0;
  for (int64_t i = tid; i < n; i += kGreedyThreads) {
    const int64_t rank = assign[i];
    if (rank < 0) continue;  // only after the guard above stopped the group before its first pick
    assign[i] = a.picks[sel + rank];
    atomicAdd(reinterpret_cast<unsigned long long*>(a.gamma + sel + rank), 1ULL);
    obj += static_cast<unsigned long long>(to_fixed(m[i], fp));
  }
  obj = warp_sum_u64(obj);
  if (lane == 0) atomicAdd(&sh.objective, obj);
  __syncthreads();
  if (tid == 0) a.objective[grp] = from_fixed(static_cast<long long>(sh.objective), fp);
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

// The greedy kernel's static shared memory on `device` after raising its dynamic limit, once
// per device and process, to all that the opt-in limit leaves beside the static part (the
// default, 48 KB, counts static and dynamic together). Once and under a lock: setting the
// attribute at every launch raced between host threads sharing a device.
template <int kRows>
int64_t prepare_greedy_kernel(int device, int optin) {
  static std::mutex mutex;
  static std::vector<int64_t> static_bytes;  // per device; -1: not prepared yet
  const std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<int>(static_bytes.size()) <= device) static_bytes.resize(device + 1, -1);
  if (static_bytes[device] < 0) {
    cudaFuncAttributes attr{};
    C10_CUDA_CHECK(cudaFuncGetAttributes(&attr, greedy_kernel<kRows>));
    const int dynamic_max = std::max(0, optin - static_cast<int>(attr.sharedSizeBytes));
    C10_CUDA_CHECK(
        cudaFuncSetAttribute(greedy_kernel<kRows>, cudaFuncAttributeMaxDynamicSharedMemorySize, dynamic_max));
    static_bytes[device] = static_cast<int64_t>(attr.sharedSizeBytes);
  }
  return static_bytes[device];
}

template <int kRows>
void launch_greedy(const GreedyArgs& args, int64_t blocks, int64_t dynamic_bytes, cudaStream_t stream) {
  greedy_kernel<kRows><<<static_cast<unsigned>(blocks), kGreedyThreads, static_cast<size_t>(dynamic_bytes), stream>>>(
      args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
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

  // --- the launch plan (host code shared with CPU builds, see cuda_launch_plan.h) -----------
  const int device = x.device().index();
  int optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  // the plan asks for at most opt-in minus the largest static part, which every kernel allows
  const int64_t static_bytes = std::max({prepare_greedy_kernel<kRowsShared>(device, optin),
                                         prepare_greedy_kernel<kRowsGlobal>(device, optin),
                                         prepare_greedy_kernel<kRowsOnTheFly>(device, optin)});
  const CudaLaunchPlan launch_plan =
      plan_cuda_launches(p, kb, G, precomputed, mode, memory_limit, optin, static_bytes);
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
  at::Tensor m_work, rem_work;
  if (launch_plan.needs_state_workspace) {
    m_work = at::empty({N}, fopts);
    rem_work = at::empty({N}, x.options().dtype(at::kInt));
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
    const unsigned tile_threads = kTile * kTileRows;
    stamp_kernel<<<1, 1, 0, stream>>>(stamp + 3 * w);
    if (l.rows == kRowsGlobal && !precomputed) {
      float* S = workspace.data_ptr<float>();
      if (craig) {
        group_tiles_kernel<kStoreSqdistAndMax><<<static_cast<unsigned>(tiles), tile_threads, 0, stream>>>(
            geo, tl, transform, S, gmax);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        craig_transform_kernel<<<static_cast<unsigned>(tiles), tile_threads, 0, stream>>>(tl, gmax, S);
      } else {
        group_tiles_kernel<kStoreSimilarity><<<static_cast<unsigned>(tiles), tile_threads, 0, stream>>>(
            geo, tl, transform, S, nullptr);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (l.rows == kRowsOnTheFly && craig) {
      group_tiles_kernel<kMaxOnly><<<static_cast<unsigned>(tiles), tile_threads, 0, stream>>>(geo, tl, transform,
                                                                                           nullptr, gmax);
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
    if (l.rows == kRowsShared) launch_greedy<kRowsShared>(args, l.count, l.dynamic_shared_bytes, stream);
    else if (l.rows == kRowsGlobal) launch_greedy<kRowsGlobal>(args, l.count, l.dynamic_shared_bytes, stream);
    else launch_greedy<kRowsOnTheFly>(args, l.count, l.dynamic_shared_bytes, stream);
    stamp_kernel<<<1, 1, 0, stream>>>(stamp + 3 * w + 2);
  }
  timings_kernel<<<1, 1, 0, stream>>>(stamp, static_cast<int64_t>(launches.size()), timings.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {selected, gains, gamma, assignment, objective, timings};
}

}  // namespace augcore
