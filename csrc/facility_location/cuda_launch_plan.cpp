#include "cuda_launch_plan.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>

#include "../ops.h"
#include "plan.h"

namespace augcore {

int parse_greedy_variant(const std::string& value) {
  if (value.empty() || value == "v1") return kGreedyV1;
  TORCH_CHECK_VALUE(value == "v2",
                    "AUGCORE_CUDA_GREEDY must be 'v1' (the default kernels) or 'v2' (the restructured ones), got '",
                    value, "'");
  return kGreedyV2;
}

int greedy_variant_from_env() {
  const char* value = std::getenv("AUGCORE_CUDA_GREEDY");
  return parse_greedy_variant(value == nullptr ? "" : value);
}

int parse_tile_variant(const std::string& value) {
  if (value.empty() || value == "v1") return kTilesV1;
  TORCH_CHECK_VALUE(value == "blocked",
                    "AUGCORE_CUDA_TILES must be 'v1' (the default tile kernel) or 'blocked' (register-blocked), got '",
                    value, "'");
  return kTilesBlocked;
}

int tile_variant_from_env() {
  const char* value = std::getenv("AUGCORE_CUDA_TILES");
  return parse_tile_variant(value == nullptr ? "" : value);
}

TilePlan plan_tiles(int variant, const int64_t* indptr, int64_t G) {
  TORCH_CHECK_VALUE(variant == kTilesV1 || variant == kTilesBlocked, "tile variant must be 1 (v1) or 2 (blocked), got ",
                    variant);
  TilePlan plan;
  plan.variant = variant;
  if (variant == kTilesBlocked) {
    plan.threads = kTileThreadsBlocked;
    plan.rows_per_thread = kBlockRows;
    plan.cols_per_thread = kBlockCols;
  }
  // a_tile, b_tile: kTileSide x (kTileSlice + 1); res: kTileSide x (kTileSide + 1) floats (geometry.cuh)
  plan.shared_bytes = 4 * (2 * kTileSide * (kTileSlice + 1) + kTileSide * (kTileSide + 1));
  for (int64_t g = 0; g < G; ++g) {
    const int64_t T = (indptr[g + 1] - indptr[g] + kTileSide - 1) / kTileSide;
    plan.tiles += T * T;
  }
  return plan;
}

int64_t parse_cluster_cap(const std::string& value) {
  if (value.empty()) return kMaxClusterSize;
  int64_t cap = 0;
  bool digits = value.size() <= 2;
  for (char c : value) digits = digits && c >= '0' && c <= '9';
  if (digits) cap = std::stoll(value);
  TORCH_CHECK_VALUE(digits && cap >= 1 && cap <= kMaxClusterSize,
                    "AUGCORE_CUDA_CLUSTER must be an integer from 1 (one block per group) to ", kMaxClusterSize,
                    " (the most blocks a cluster of v2 may have), or unset, got '", value, "'");
  return cap;
}

int64_t cluster_cap_from_env() {
  const char* value = std::getenv("AUGCORE_CUDA_CLUSTER");
  return parse_cluster_cap(value == nullptr ? "" : value);
}

int64_t greedy_state_bytes_per_point(int variant, int64_t method) {
  return variant == kGreedyV2 && method == kLazy ? kLazyStateBytesPerPoint : kStateBytesPerPoint;
}

CudaLaunchPlan plan_cuda_launches(const int64_t* indptr, const int64_t* budgets, int64_t G, bool precomputed,
                                  int64_t mode, int64_t memory_limit, int64_t shared_optin_bytes,
                                  int64_t static_shared_bytes, int64_t state_bytes_per_point) {
  CudaLaunchPlan plan;
  const int64_t dynamic_max = std::max<int64_t>(0, shared_optin_bytes - static_shared_bytes);
  const auto size = [&](int64_t g) { return indptr[g + 1] - indptr[g]; };
  const auto block_bytes = [](int64_t n) { return 4.0 * static_cast<double>(n) * static_cast<double>(n); };
  auto open_launch = [&](int rows) {
    GreedyLaunch l;
    l.rows = rows;
    l.first = static_cast<int64_t>(plan.groups.size());
    plan.launches.push_back(l);
  };
  auto add = [&](int64_t g) {
    GreedyLaunch& l = plan.launches.back();
    plan.groups.push_back(g);
    ++l.count;
    l.max_n = std::max(l.max_n, size(g));
    if (l.rows == kRowsGlobal && !precomputed) l.workspace_floats += size(g) * size(g);
  };

  std::vector<int64_t> shared, dense, fly;
  for (int64_t g = 0; g < G; ++g) {
    if (budgets[g] <= 0) continue;
    const int64_t n = size(g);
    if (precomputed)
      dense.push_back(g);
    else if (block_bytes(n) + static_cast<double>(state_bytes_per_point * n) <= static_cast<double>(dynamic_max))
      shared.push_back(g);
    else if (mode == kDense || (mode == kAuto && block_bytes(n) <= static_cast<double>(memory_limit)))
      dense.push_back(g);
    else
      fly.push_back(g);
  }
  if (!shared.empty()) {
    open_launch(kRowsShared);
    for (int64_t g : shared) add(g);
  }
  if (precomputed) {
    if (!dense.empty()) open_launch(kRowsGlobal);
    for (int64_t g : dense) add(g);
  } else {
    // dense groups in batches whose blocks fit in memory_limit (a larger group alone)
    for (size_t v = 0; v < dense.size();) {
      open_launch(kRowsGlobal);
      double bytes = 0.0;
      do {
        bytes += block_bytes(size(dense[v]));
        add(dense[v++]);
      } while (v < dense.size() && bytes + block_bytes(size(dense[v])) <= static_cast<double>(memory_limit));
    }
  }
  if (!fly.empty()) {
    open_launch(kRowsOnTheFly);
    for (int64_t g : fly) add(g);
  }
  for (GreedyLaunch& l : plan.launches) {
    const int64_t rows_bytes = l.rows == kRowsShared ? 4 * l.max_n * l.max_n : 0;
    l.state_in_shared = rows_bytes + state_bytes_per_point * l.max_n <= dynamic_max;
    l.dynamic_shared_bytes = rows_bytes + (l.state_in_shared ? state_bytes_per_point * l.max_n : 0);
    plan.needs_state_workspace |= !l.state_in_shared;
    plan.max_workspace_floats = std::max(plan.max_workspace_floats, l.workspace_floats);
  }
  return plan;
}

std::vector<int64_t> step_candidates(const int64_t* indptr, const int64_t* budgets, int64_t G, int64_t method,
                                     double eps) {
  std::vector<int64_t> candidates(G, 0);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = indptr[g + 1] - indptr[g];
    if (budgets[g] > 0) candidates[g] = method == kStochastic ? stochastic_sample_size(n, budgets[g], eps) : n;
  }
  return candidates;
}

void plan_clusters(CudaLaunchPlan& plan, const int64_t* candidates, int64_t method, int64_t sm_count,
                   int64_t max_cluster_size, int64_t dynamic_max) {
  if (method == kLazy || max_cluster_size < 2) return;
  for (GreedyLaunch& l : plan.launches) {
    if (l.rows == kRowsShared) continue;
    int64_t cap = 0;
    for (int64_t v = l.first; v < l.first + l.count; ++v) cap = std::max(cap, candidates[plan.groups[v]]);
    const int64_t widest = std::min({max_cluster_size, kMaxClusterSize, sm_count / l.count,
                                     l.max_n / kMinClusterSlice});
    if (widest < 2) continue;
    // a narrower cluster needs more shared memory a block (a wider m slice): the widest or none
    const int64_t bytes = cluster_dynamic_bytes(l.max_n, widest, cap);
    if (bytes > dynamic_max) continue;
    l.cluster_size = widest;
    l.candidate_cap = cap;
    l.state_in_shared = true;  // each block's m slice and rem (the one-block state may not have fit)
    l.dynamic_shared_bytes = bytes;
  }
  plan.needs_state_workspace = false;
  for (const GreedyLaunch& l : plan.launches) plan.needs_state_workspace |= !l.state_in_shared;
}

}  // namespace augcore
