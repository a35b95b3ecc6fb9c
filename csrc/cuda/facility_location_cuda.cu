// Segmented facility-location greedy on the GPU: one thread block per group runs
// every greedy step, all groups of a launch at once.
//
// Where a group's similarities live (chosen per group on the host):
//   shared:     n^2 floats fit in the block's shared memory: computed there from the
//               points at kernel start (no global n x n at all);
//   global:     a dense n x n block in a workspace filled by the tile kernel, groups
//               packed into batches of at most `memory_limit` bytes (auto mode), or the
//               caller's precomputed blocks;
//   on-the-fly: recomputed from the points at every use: O(n) memory per group.
// Each pair's similarity is the CPU's float32 value bit for bit (geometry.cuh).
//
// A step evaluates its candidates (all remaining ones for naive and lazy, the
// counter-based sample for stochastic) in chunks: warp w reduces 256 points of one
// candidate in float (fixed lane order and shuffle tree), the chunk's float partials
// are summed per candidate in double in point order, and the block takes the best
// (larger gain, ties to the smaller index). A gain therefore has one value however
// it is scheduled; "lazy" is evaluated naively and returns naive's picks. The CPU
// reduces its 1024-point blocks with SIMD lanes, so gains agree with it to float
// rounding (not bit for bit) and picks agree unless two candidates' gains are
// within that rounding.
//
// Streams: everything runs on the current torch stream. The only host work is
// reading the host indptr/budgets and one pinned, non-blocking copy of the launch
// plan; nothing waits for the device. Timings are therefore not measured here
// (returned as NaN): measuring them would need a synchronisation.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "../common/rng.h"
#include "../facility_location_plan.h"
#include "../ops.h"
#include "geometry.cuh"

namespace augcore {
namespace cuda {
namespace {

constexpr int kGreedyThreads = 512;
constexpr int kGreedyWarps = kGreedyThreads / kWarp;
constexpr int64_t kGainBlockGpu = 256;  // points per float partial sum
constexpr int kPartials = 2048;         // float partials per candidate chunk (shared memory)

enum RowsKind : int { kRowsShared = 0, kRowsGlobal = 1, kRowsOnTheFly = 2 };

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
  const int* group_max;        // (L,) craig: largest squared distance as int bits (on-the-fly rows)
  float* m_work;               // (N,) when the greedy state does not fit in shared memory
  int* rem_work;               // (N,)
  int64_t method;
  uint64_t seed;
  bool state_in_shared;
  int64_t* picks;
  double* gains;
  int64_t* gamma;
  int64_t* assignment;  // holds each point's pick rank during the greedy, then its medoid's position
  double* objective;
};

// Larger gain wins; exact ties go to the smaller index (the CPU's rule).
__device__ __forceinline__ bool better(double g, int i, double g_other, int i_other) {
  return g > g_other || (g == g_other && i < i_other);
}

template <int kRows>
__global__ void __launch_bounds__(kGreedyThreads) greedy_kernel(GreedyArgs a) {
  extern __shared__ __align__(16) unsigned char dyn[];
  __shared__ float partial[kPartials];
  __shared__ int draws[kGreedyThreads];
  __shared__ double warp_gain[kGreedyWarps];
  __shared__ int warp_idx[kGreedyWarps], warp_q[kGreedyWarps];
  __shared__ double best_gain;
  __shared__ int best_idx, best_q;
  __shared__ float block_dmax;

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
      local_max = fmaxf(local_max, d2);
      S_sh[t] = craig ? d2 : tr(d2);
    }
    if (craig) {
      local_max = warp_max(local_max);
      if (lane == 0) partial[warp] = local_max;
      __syncthreads();
      if (tid == 0) {
        float mx = 0.0f;
        for (int w = 0; w < kGreedyWarps; ++w) mx = fmaxf(mx, partial[w]);
        block_dmax = __fsqrt_rn(mx);
      }
      __syncthreads();
      tr.dmax = block_dmax;
      for (int64_t t = tid; t < n * n; t += kGreedyThreads) S_sh[t] = tr(S_sh[t]);
    }
  }
  if (kRows == kRowsOnTheFly && tr.kind == kCraig) tr.dmax = __fsqrt_rn(__int_as_float(a.group_max[u]));
  for (int64_t i = tid; i < n; i += kGreedyThreads) {
    m[i] = 0.0f;
    rem[i] = static_cast<int>(i);
    assign[i] = -1;
  }
  __syncthreads();

  // s_ci for local candidate c and local point i (candidate-major, as the CPU's rows)
  auto sim = [&](int64_t c, int64_t i) -> float {
    if (kRows == kRowsShared) return S_sh[c * n + i];
    if (kRows == kRowsGlobal) return S_g[c * n + i];
    return tr(pair_sqdist(a.geo, base + c, base + i));
  };

  const bool stochastic = a.method == kStochastic;
  const int64_t nb = (n + kGainBlockGpu - 1) / kGainBlockGpu;
  const int64_t per_chunk = max(int64_t{1}, kPartials / nb);
  for (int64_t step = 0; step < k; ++step) {
    const int64_t r = n - step;
    const int64_t count = stochastic ? min(r, a.sample_size[grp]) : r;
    if (stochastic) {
      // partial Fisher-Yates on rem: draws in parallel (they depend on (seed, group, step, j) and r
      // only), swaps in order by one thread, exactly as the CPU does them
      for (int64_t j0 = 0; j0 < count; j0 += kGreedyThreads) {
        const int64_t j = j0 + tid;
        if (j < count)
          draws[tid] = static_cast<int>(
              j + static_cast<int64_t>(uniform_below(counter_hash(a.seed, static_cast<uint64_t>(grp),
                                                                   static_cast<uint64_t>(step), static_cast<uint64_t>(j)),
                                                      static_cast<uint64_t>(r - j))));
        __syncthreads();
        if (tid == 0) {
          const int64_t w = min(int64_t{kGreedyThreads}, count - j0);
          for (int64_t v = 0; v < w; ++v) {
            const int t = draws[v];
            const int tmp = rem[j0 + v];
            rem[j0 + v] = rem[t];
            rem[t] = tmp;
          }
        }
        __syncthreads();
      }
    }
    if (tid == 0) {
      best_gain = -1.0;
      best_idx = INT_MAX;
      best_q = -1;
    }
    for (int64_t q0 = 0; q0 < count; q0 += per_chunk) {
      const int64_t cc = min(per_chunk, count - q0);
      for (int64_t task = warp; task < cc * nb; task += kGreedyWarps) {
        const int64_t uc = task / nb, b = task % nb;
        const int64_t c = rem[q0 + uc];
        const int64_t i_end = min(n, (b + 1) * kGainBlockGpu);
        float acc = 0.0f;
        for (int64_t i = b * kGainBlockGpu + lane; i < i_end; i += kWarp)
          acc = __fadd_rn(acc, fmaxf(0.0f, __fsub_rn(sim(c, i), m[i])));
        acc = warp_sum(acc);
        if (lane == 0) partial[uc * nb + b] = acc;
      }
      __syncthreads();
      double g = -1.0;
      int idx = INT_MAX, q = -1;
      for (int64_t uc = tid; uc < cc; uc += kGreedyThreads) {
        double total = 0.0;
        for (int64_t b = 0; b < nb; ++b) total += static_cast<double>(partial[uc * nb + b]);
        const int c = rem[q0 + uc];
        if (better(total, c, g, idx)) {
          g = total;
          idx = c;
          q = static_cast<int>(q0 + uc);
        }
      }
      for (int off = kWarp / 2; off > 0; off /= 2) {
        const double og = __shfl_down_sync(0xffffffffu, g, off);
        const int oi = __shfl_down_sync(0xffffffffu, idx, off);
        const int oq = __shfl_down_sync(0xffffffffu, q, off);
        if (better(og, oi, g, idx)) {
          g = og;
          idx = oi;
          q = oq;
        }
      }
      if (lane == 0) {
        warp_gain[warp] = g;
        warp_idx[warp] = idx;
        warp_q[warp] = q;
      }
      __syncthreads();
      if (tid == 0) {
        for (int w = 0; w < kGreedyWarps; ++w)
          if (warp_q[w] >= 0 && better(warp_gain[w], warp_idx[w], best_gain, best_idx)) {
            best_gain = warp_gain[w];
            best_idx = warp_idx[w];
            best_q = warp_q[w];
          }
      }
      __syncthreads();  // partials and warp results are reused by the next chunk
    }
    if (tid == 0) {
      a.picks[sel + step] = base + best_idx;
      a.gains[sel + step] = best_gain;
      rem[best_q] = rem[r - 1];  // swap-remove, as the CPU
    }
    const int64_t c = best_idx;  // written before the last barrier of the chunk loop
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

  // ranks -> medoid positions, gamma counts (integer atomics: order-free), objective in index order
  for (int64_t i = tid; i < n; i += kGreedyThreads) {
    const int64_t rank = assign[i];
    assign[i] = a.picks[sel + rank];
    atomicAdd(reinterpret_cast<unsigned long long*>(a.gamma + sel + rank), 1ULL);
  }
  if (tid == 0) {
    double total = 0.0;  // sequential, like the CPU's finish(): the same double value
    for (int64_t i = 0; i < n; ++i) total += static_cast<double>(m[i]);
    a.objective[grp] = total;
  }
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
      *v = __fsub_rn(dmax, __fsqrt_rn(*v));
    }
  }
}

// One launch of the plan: the listed groups and where their data lives in the metadata buffer.
struct Launch {
  int rows;
  int64_t first, count;  // listed groups: plan.groups[first, first + count)
  int64_t max_n;
  int64_t workspace_floats;  // dense batches: floats of S they need
};

template <int kRows>
void launch_greedy(const GreedyArgs& args, int64_t blocks, size_t dyn_bytes, cudaStream_t stream) {
  if (dyn_bytes > 48 * 1024)
    C10_CUDA_CHECK(cudaFuncSetAttribute(greedy_kernel<kRows>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(dyn_bytes)));
  greedy_kernel<kRows><<<static_cast<unsigned>(blocks), kGreedyThreads, dyn_bytes, stream>>>(args);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace
}  // namespace cuda

FacilityLocationOut facility_location_cuda(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                           const std::optional<at::Tensor>& similarity, const at::Tensor& indptr,
                                           const at::Tensor& budgets, int64_t similarity_kind, double scale,
                                           double bias, int64_t method, double eps, int64_t seed, int64_t mode,
                                           int64_t memory_limit) {
  using namespace cuda;
  TORCH_CHECK(x.is_cuda(), "facility_location: x must be a CUDA tensor here");
  const FacilityLocationPlan plan =
      plan_facility_location(x, embeddings, similarity, indptr, budgets, similarity_kind, scale, method, eps, mode);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t G = plan.G, N = plan.N, D = plan.D, H = plan.H;
  const int64_t* p = plan.p;
  const int64_t* kb = plan.k;
  const std::vector<int64_t>& sel_ptr = plan.sel_ptr;
  const std::vector<int64_t>& sim_ptr = plan.sim_ptr;
  TORCH_CHECK(N < INT_MAX, "facility_location: at most 2^31 - 1 points on the GPU");
  const bool precomputed = similarity_kind == kPrecomputed;
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
  auto timings = at::full({2}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
  if (K == 0) return {selected, gains, gamma, assignment, objective, timings};

  // --- the launch plan ------------------------------------------------------------------------
  const int device = x.device().index();
  int optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  cudaFuncAttributes attr{};
  C10_CUDA_CHECK(cudaFuncGetAttributes(&attr, greedy_kernel<kRowsShared>));
  const int64_t dyn_max = std::max<int64_t>(0, static_cast<int64_t>(optin) - static_cast<int64_t>(attr.sharedSizeBytes) - 1024);
  const auto state_bytes = [](int64_t n) { return 8 * n; };  // m (float) + remaining (int)

  std::vector<int64_t> list;  // group ids of every launch, back to back
  std::vector<Launch> launches;
  auto open_launch = [&](int rows) {
    launches.push_back({rows, static_cast<int64_t>(list.size()), 0, 0, 0});
  };
  auto add = [&](int64_t g) {
    const int64_t n = p[g + 1] - p[g];
    list.push_back(g);
    Launch& l = launches.back();
    ++l.count;
    l.max_n = std::max(l.max_n, n);
    l.workspace_floats += n * n;
  };
  std::vector<int64_t> active;
  for (int64_t g = 0; g < G; ++g)
    if (kb[g] > 0) active.push_back(g);
  if (precomputed) {
    open_launch(kRowsGlobal);
    for (int64_t g : active) add(g);
  } else {
    std::vector<int64_t> tiny, dense, fly;
    for (int64_t g : active) {
      const int64_t n = p[g + 1] - p[g];
      const double block = 4.0 * static_cast<double>(n) * static_cast<double>(n);
      if (block + state_bytes(n) <= static_cast<double>(dyn_max))
        tiny.push_back(g);
      else if (mode == kDense || (mode == kAuto && block <= static_cast<double>(memory_limit)))
        dense.push_back(g);
      else
        fly.push_back(g);
    }
    if (!tiny.empty()) {
      open_launch(kRowsShared);
      for (int64_t g : tiny) add(g);
    }
    // dense groups in batches whose blocks fit in memory_limit (a larger group in dense mode alone)
    for (size_t v = 0; v < dense.size();) {
      open_launch(kRowsGlobal);
      double bytes = 0.0;
      do {
        const int64_t n = p[dense[v] + 1] - p[dense[v]];
        bytes += 4.0 * static_cast<double>(n) * static_cast<double>(n);
        add(dense[v++]);
      } while (v < dense.size() &&
               bytes + 4.0 * std::pow(static_cast<double>(p[dense[v] + 1] - p[dense[v]]), 2) <=
                   static_cast<double>(memory_limit));
    }
    if (!fly.empty()) {
      open_launch(kRowsOnTheFly);
      for (int64_t g : fly) add(g);
    }
  }

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
  std::vector<int64_t> tile_at(launches.size());
  int64_t max_workspace = 0;
  for (const Launch& l : launches) {
    int64_t off = 0;
    for (int64_t v = l.first; v < l.first + l.count; ++v) {
      const int64_t g = list[v], n = p[g + 1] - p[g];
      meta.push_back(precomputed ? sim_ptr[g] : off);
      off += n * n;
    }
    if (l.rows == kRowsGlobal && !precomputed) max_workspace = std::max(max_workspace, off);
  }
  for (size_t w = 0; w < launches.size(); ++w) {
    tile_at[w] = static_cast<int64_t>(meta.size());
    int64_t tiles = 0;
    meta.push_back(0);
    for (int64_t v = launches[w].first; v < launches[w].first + launches[w].count; ++v) {
      const int64_t n = p[list[v] + 1] - p[list[v]], T = (n + kTile - 1) / kTile;
      tiles += T * T;
      meta.push_back(tiles);
    }
    TORCH_CHECK(tiles < (int64_t{1} << 31), "facility_location: too many tiles for one launch (", tiles, ")");
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
  at::Tensor workspace = at::empty({max_workspace}, fopts);  // reused batch after batch (stream-ordered)
  at::Tensor m_work, rem_work;

  GreedyArgs args{};
  args.geo = geo;
  args.transform = transform;
  args.indptr = md;
  args.budgets = md + G + 1;
  args.sel_ptr = md + 2 * G + 1;
  args.sample_size = md + 3 * G + 2;
  args.method = method;
  args.seed = static_cast<uint64_t>(seed);
  args.picks = selected.data_ptr<int64_t>();
  args.gains = gains.data_ptr<double>();
  args.gamma = gamma.data_ptr<int64_t>();
  args.assignment = assignment.data_ptr<int64_t>();
  args.objective = objective.data_ptr<double>();

  for (size_t w = 0; w < launches.size(); ++w) {
    const Launch& l = launches[w];
    TileList tl{md + tile_at[w], md + list_at + l.first, md, md + off_at + l.first, l.count};
    int* gmax = group_max.data_ptr<int>() + l.first;
    const int64_t tiles = meta[tile_at[w] + l.count];
    const unsigned tile_threads = kTile * kTileRows;
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
    args.groups = md + list_at + l.first;
    args.s_off = md + off_at + l.first;
    args.S = precomputed ? sim : (l.rows == kRowsGlobal ? workspace.data_ptr<float>() : nullptr);
    args.group_max = gmax;
    size_t dyn = l.rows == kRowsShared ? static_cast<size_t>(4 * l.max_n * l.max_n) : 0;
    args.state_in_shared = static_cast<int64_t>(dyn) + state_bytes(l.max_n) <= dyn_max;
    if (args.state_in_shared) {
      dyn += static_cast<size_t>(state_bytes(l.max_n));
    } else if (!m_work.defined()) {
      m_work = at::empty({N}, fopts);
      rem_work = at::empty({N}, x.options().dtype(at::kInt));
    }
    args.m_work = args.state_in_shared ? nullptr : m_work.data_ptr<float>();
    args.rem_work = args.state_in_shared ? nullptr : rem_work.data_ptr<int>();
    if (l.rows == kRowsShared) launch_greedy<kRowsShared>(args, l.count, dyn, stream);
    else if (l.rows == kRowsGlobal) launch_greedy<kRowsGlobal>(args, l.count, dyn, stream);
    else launch_greedy<kRowsOnTheFly>(args, l.count, dyn, stream);
  }
  return {selected, gains, gamma, assignment, objective, timings};
}

}  // namespace augcore
