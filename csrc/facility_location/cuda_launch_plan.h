// Host-side launch planning of the CUDA facility-location greedy: which kernel variant
// runs, which groups get shared-memory, global or on-the-fly similarities, where the
// greedy state lives, how much dynamic shared memory each launch asks for, and how dense
// groups are batched under the memory limit. Plain C++, compiled in every build, so the
// planning is tested on machines without a GPU (torch.ops.augcore.cuda_launch_plan,
// torch.ops.augcore.cuda_greedy_variant).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../common/host_device.h"

namespace augcore {

// Where a launch's similarities live.
enum RowsKind : int { kRowsShared = 0, kRowsGlobal = 1, kRowsOnTheFly = 2 };

constexpr int kGreedyThreads = 512;
constexpr int kGreedyWarpCount = kGreedyThreads / 32;
constexpr int kCandidateChunk = 1024;  // candidates whose gains one pass accumulates in shared memory

// Which greedy kernels run: v1 (the default: warps take (candidate, 256-point block) tasks
// added with shared atomics) or v2 (one candidate per warp, loads in flight, an exact
// batched lazy greedy; compiled, not yet run on a GPU: docs/gpu.md).
enum GreedyVariant : int { kGreedyV1 = 1, kGreedyV2 = 2 };

// The variant named by the environment variable AUGCORE_CUDA_GREEDY: unset, "" or "v1" -> v1,
// "v2" -> v2; any other value raises ValueError naming the variable.
int greedy_variant_from_env();
int parse_greedy_variant(const std::string& value);

// ---- the distance tile kernels ------------------------------------------------------------------
// Which kernel fills the 32 x 32 distance tiles (pairwise_sqdist, dense similarity blocks, craig's
// maximum), by AUGCORE_CUDA_TILES: v1 (the default: 256 threads a tile, 4 pairs a thread, 5 shared
// loads a feature for 4 pairs) or blocked (register-blocked: 64 threads a tile, a 4 x 4 block of pairs
// a thread from 4 + 4 operands in registers; compiled, not yet run on a GPU: docs/gpu.md). Both sum
// every pair over k in order with the same roundings, so their values are the CPU op's.
enum TileVariant : int { kTilesV1 = 1, kTilesBlocked = 2 };

// Unset, "" or "v1" -> v1, "blocked" -> blocked; any other value raises ValueError naming the variable.
int tile_variant_from_env();
int parse_tile_variant(const std::string& value);

constexpr int kTileSide = 32;       // pairs a tile side (both variants: the same tile lists)
constexpr int kTileSlice = 32;      // features staged in shared memory per round (both variants)
constexpr int kTileThreadsV1 = 256;  // v1: 8 rows of threads, each 4 pairs of one column
constexpr int kBlockRows = 4, kBlockCols = 4;  // blocked: the pairs a thread keeps in registers
constexpr int kTileThreadsBlocked = kTileSide * kTileSide / (kBlockRows * kBlockCols);  // 64

// One tile launch: threads a block, pairs a thread (rows x cols), static shared bytes a block
// (the two staged k-slices and the result tile), and the tile count of the groups (T_g^2,
// T_g = ceil(n_g / kTileSide), over non-empty groups; blocks below the diagonal return at once).
struct TilePlan {
  int variant = kTilesV1;
  int threads = kTileThreadsV1;
  int rows_per_thread = kTileSide / (kTileThreadsV1 / kTileSide), cols_per_thread = 1;
  int64_t shared_bytes = 0;
  int64_t tiles = 0;
};
TilePlan plan_tiles(int variant, const int64_t* indptr, int64_t G);

// ---- the greedy --------------------------------------------------------------------------------
// v2's cluster size at most this (AUGCORE_CUDA_CLUSTER: unset or "" -> no cap beyond the device's,
// "1" one block per group, ..., "16"); anything else raises ValueError naming the variable. Lets
// the GPU check compare one-block v2 with cluster v2 on the same device.
int64_t cluster_cap_from_env();
int64_t parse_cluster_cap(const std::string& value);

// The v1 greedy kernel's static shared memory, one struct so the host knows its size.
struct GreedyShared {
  unsigned long long gain_sum[kCandidateChunk];  // fixed-point gain of each candidate of the chunk
  int draws[kGreedyThreads];                     // Fisher-Yates targets of one round
  long long warp_gain[kGreedyWarpCount];
  int warp_idx[kGreedyWarpCount], warp_q[kGreedyWarpCount];
  float warp_max[kGreedyWarpCount];
  unsigned long long objective;
  long long best_gain;
  int best_idx, best_q;
  float bound;
};

// The v2 greedy kernel's static shared memory (no per-candidate gain array: a warp keeps its
// candidates' best in registers).
struct GreedyV2Shared {
  int draws[kGreedyThreads];  // Fisher-Yates targets of one round
  long long warp_gain[kGreedyWarpCount];
  int warp_idx[kGreedyWarpCount], warp_q[kGreedyWarpCount];
  float warp_max[kGreedyWarpCount];
  unsigned long long objective;
  long long best_gain;
  int best_idx, best_q;
  int evaluated;  // lazy: some warp evaluated a candidate this round
  float group_bound;  // cluster: this block's largest precomputed similarity, read by the others
};

struct GreedyLaunch {
  int rows = kRowsGlobal;
  int64_t first = 0, count = 0;       // groups[first, first + count) of the plan
  int64_t max_n = 0;                  // largest group of the launch
  int64_t dynamic_shared_bytes = 0;   // requested at launch; the kernel's attribute is set to it
  bool state_in_shared = false;       // m and remaining in shared memory (else an O(N) workspace)
  int64_t workspace_floats = 0;       // dense n^2 blocks this launch fills (global rows, not precomputed)
  int64_t cluster_size = 1;           // v2: blocks per group (a thread-block cluster, sm_90), 1: one block
  int64_t candidate_cap = 0;          // cluster: the most candidates a step of the launch evaluates
};

struct CudaLaunchPlan {
  std::vector<int64_t> groups;  // group ids, launch after launch
  std::vector<GreedyLaunch> launches;
  int64_t max_workspace_floats = 0;
  bool needs_state_workspace = false;
};

// Greedy state per point in shared memory: m (float) and remaining (int); v2's lazy greedy
// adds each candidate's fixed-point bound (int64) and the step that last evaluated it (int).
constexpr int64_t kStateBytesPerPoint = 8;
constexpr int64_t kLazyStateBytesPerPoint = kStateBytesPerPoint + 12;

// The state bytes per point a launch of `variant` needs for `method` (GreedyMethod).
int64_t greedy_state_bytes_per_point(int variant, int64_t method);

// indptr (G + 1) and budgets (G) of the sorted groups; shared_optin_bytes is the device's
// opt-in shared memory per block and static_shared_bytes the kernel's own (a launch may
// use dynamic + static <= opt-in); state_bytes_per_point from greedy_state_bytes_per_point.
CudaLaunchPlan plan_cuda_launches(const int64_t* indptr, const int64_t* budgets, int64_t G, bool precomputed,
                                  int64_t mode, int64_t memory_limit, int64_t shared_optin_bytes,
                                  int64_t static_shared_bytes, int64_t state_bytes_per_point = kStateBytesPerPoint);

// ---- v2 on several SMs per group (sm_90 thread-block clusters) ----------------------------------
// Block `rank` of a group's cluster owns the points [rank * slice, (rank + 1) * slice) of the group
// (clipped to n): their m, their fixed-point terms of every candidate (partial gains), their commit.
// rem is replicated (every block runs the same Fisher-Yates and swap-remove). The slice is a multiple
// of 4, so every slice of an n % 4 == 0 group starts 16-byte aligned (float4 loads). The kernel
// divides in 32 bits (n < 2^31 on the GPU), the host in 64.
template <typename Int>
AUGCORE_HOST_DEVICE Int cluster_slice(Int n, Int cluster_size) {
  return ((n + cluster_size - 1) / cluster_size + 3) / 4 * 4;
}

// A cluster block's dynamic shared memory: [partial gains, two buffers of candidate_cap uint64 |
// its m slice (float) | rem (int, all n)].
AUGCORE_HOST_DEVICE int64_t cluster_dynamic_bytes(int64_t max_n, int64_t cluster_size, int64_t candidate_cap) {
  return 16 * candidate_cap + 4 * cluster_slice(max_n, cluster_size) + 4 * max_n;
}

constexpr int64_t kMinClusterSlice = 512;  // points a cluster block owns at least: 16 a lane per candidate
// candidates[g] for plan_clusters: n_g (naive, lazy) or the CPU's stochastic sample size (0 without a budget).
std::vector<int64_t> step_candidates(const int64_t* indptr, const int64_t* budgets, int64_t G, int64_t method,
                                     double eps);

constexpr int64_t kMaxClusterSize = 16;  // 8 portable, 16 with cudaFuncAttributeNonPortableClusterSizeAllowed

// Spreads the launches of `plan` that can use them over clusters. A launch qualifies when its rows
// are global or on the fly (shared rows are small groups), the method is naive or stochastic (lazy
// keeps one block: its rounds would need the bounds replicated) and max_cluster_size >= 2 (sm_90;
// the device's largest launchable cluster, at most kMaxClusterSize). Its cluster size is the
// largest C <= max_cluster_size with count * C <= sm_count (no second wave of groups) and
// C <= max_n / kMinClusterSlice, if its cluster_dynamic_bytes fit dynamic_max; candidates[g]
// is the most candidates a step of group g evaluates (n_g for naive, the sample size for
// stochastic). A launch that gets C < 2 stays one block per group, unchanged.
void plan_clusters(CudaLaunchPlan& plan, const int64_t* candidates, int64_t method, int64_t sm_count,
                   int64_t max_cluster_size, int64_t dynamic_max);

}  // namespace augcore
