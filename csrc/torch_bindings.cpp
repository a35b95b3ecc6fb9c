// The one registration unit: every op's schema, its documentation, and its
// implementation per dispatch key. Importing augcore._C runs this.
#include <Python.h>
#include <torch/library.h>

#include <algorithm>
#include <sstream>

#include "checks.h"
#include "facility_location/cuda_launch_plan.h"
#include "ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef AUGCORE_CUDA_ARCHS
#define AUGCORE_CUDA_ARCHS ""
#endif

namespace augcore {

// JSON describing what this binary contains (parsed by augcore.build_info()).
std::string build_info() {
  std::ostringstream out;
  out << "{\"cpu\": true";
#ifdef _OPENMP
  out << ", \"openmp\": true, \"openmp_threads\": " << omp_get_max_threads();
#else
  out << ", \"openmp\": false, \"openmp_threads\": 1";
#endif
#ifdef AUGCORE_WITH_CUDA
  out << ", \"cuda\": true, \"cuda_archs\": \"" << AUGCORE_CUDA_ARCHS << "\"";
#else
  out << ", \"cuda\": false, \"cuda_archs\": \"\"";
#endif
  out << ", \"torch_abi\": " << _GLIBCXX_USE_CXX11_ABI << "}";
  return out.str();
}

// The CUDA greedy's launch plan for the given groups and device limits, as tensors:
// (groups (L,) ids launch after launch, launches (W, 9) rows of [rows kind 0 shared / 1 global /
// 2 on-the-fly, first, count, max_n, dynamic shared bytes, state in shared 0/1, workspace floats,
// cluster size, candidate cap]). static_shared_bytes < 0 means this build's static shared memory of
// the variant's kernel (sizeof(GreedyShared) for v1, sizeof(GreedyV2Shared) for v2); `method` sets the
// state bytes. v2 with max_cluster_size >= 2 (sm_90) spreads groups over clusters (plan_clusters).
std::tuple<at::Tensor, at::Tensor> cuda_launch_plan(const at::Tensor& indptr, const at::Tensor& budgets,
                                                    bool precomputed, int64_t mode, int64_t memory_limit,
                                                    int64_t shared_optin_bytes, int64_t static_shared_bytes,
                                                    int64_t variant, int64_t method, int64_t sm_count,
                                                    int64_t max_cluster_size, double eps) {
  constexpr const char* op = "cuda_launch_plan";
  TORCH_CHECK_VALUE(mode >= kAuto && mode <= kOnTheFly, op, ": mode must be 0, 1 or 2, got ", mode);
  TORCH_CHECK_VALUE(memory_limit >= 0 && shared_optin_bytes >= 0, op,
                    ": memory_limit and shared_optin_bytes must be >= 0");
  TORCH_CHECK_VALUE(variant == kGreedyV1 || variant == kGreedyV2, op, ": variant must be 1 or 2, got ", variant);
  TORCH_CHECK_VALUE(method >= kNaive && method <= kStochastic, op, ": method must be 0, 1 or 2, got ", method);
  const at::Tensor ptr = checked_indptr(indptr, -1, op);
  const at::Tensor bud = checked_budgets(budgets, ptr, op);
  if (static_shared_bytes < 0)
    static_shared_bytes = static_cast<int64_t>(variant == kGreedyV2 ? sizeof(GreedyV2Shared) : sizeof(GreedyShared));
  CudaLaunchPlan plan = plan_cuda_launches(ptr.data_ptr<int64_t>(), bud.data_ptr<int64_t>(), ptr.numel() - 1,
                                           precomputed, mode, memory_limit, shared_optin_bytes, static_shared_bytes,
                                           greedy_state_bytes_per_point(static_cast<int>(variant), method));
  if (variant == kGreedyV2) {
    TORCH_CHECK_VALUE(sm_count >= 0, op, ": sm_count must be >= 0, got ", sm_count);
    TORCH_CHECK_VALUE(max_cluster_size >= 1, op, ": max_cluster_size must be >= 1, got ", max_cluster_size);
    TORCH_CHECK_VALUE(eps > 0.0 && eps < 1.0, op, ": eps must lie in (0, 1), got ", eps);
    const auto candidates = step_candidates(ptr.data_ptr<int64_t>(), bud.data_ptr<int64_t>(), ptr.numel() - 1,
                                            method, eps);
    plan_clusters(plan, candidates.data(), method, sm_count, max_cluster_size,
                  std::max<int64_t>(0, shared_optin_bytes - static_shared_bytes));
  }
  auto groups = at::tensor(plan.groups, at::TensorOptions().dtype(at::kLong));
  auto launches = at::empty({static_cast<int64_t>(plan.launches.size()), 9}, at::kLong);
  int64_t* out = launches.data_ptr<int64_t>();
  for (const GreedyLaunch& l : plan.launches) {
    const int64_t row[9] = {l.rows, l.first, l.count, l.max_n, l.dynamic_shared_bytes, l.state_in_shared,
                            l.workspace_floats, l.cluster_size, l.candidate_cap};
    out = std::copy(row, row + 9, out);
  }
  return {groups, launches};
}

// The greedy variant the CUDA op would run now (AUGCORE_CUDA_GREEDY), or ValueError.
int64_t cuda_greedy_variant() { return greedy_variant_from_env(); }

// The distance tile launch for the groups of indptr, as a (6,) int64 tensor: [variant 1 v1 / 2 blocked,
// threads a tile, pair rows a thread, pair columns a thread, static shared bytes, tiles]. variant < 0:
// the one the CUDA ops would run now (AUGCORE_CUDA_TILES, or ValueError).
at::Tensor cuda_tile_plan(const at::Tensor& indptr, int64_t variant) {
  const at::Tensor ptr = checked_indptr(indptr, -1, "cuda_tile_plan");
  const TilePlan plan = plan_tiles(variant < 0 ? tile_variant_from_env() : static_cast<int>(variant),
                                   ptr.data_ptr<int64_t>(), ptr.numel() - 1);
  return at::tensor(std::vector<int64_t>{plan.variant, plan.threads, plan.rows_per_thread, plan.cols_per_thread,
                                         plan.shared_bytes, plan.tiles},
                    at::TensorOptions().dtype(at::kLong));
}

// The most blocks a v2 cluster may have now (AUGCORE_CUDA_CLUSTER; 16 when unset), or ValueError.
int64_t cuda_cluster_cap() { return cluster_cap_from_env(); }

}  // namespace augcore

TORCH_LIBRARY(augcore, m) {
  m.def("build_info() -> str", &augcore::build_info);
  m.def("cuda_launch_plan(Tensor indptr, Tensor budgets, bool precomputed, int mode, int memory_limit, "
        "int shared_optin_bytes, int static_shared_bytes=-1, int variant=1, int method=0, int sm_count=0, "
        "int max_cluster_size=1, float eps=0.01) -> (Tensor, Tensor)",
        &augcore::cuda_launch_plan);
  m.def("cuda_greedy_variant() -> int", &augcore::cuda_greedy_variant);
  m.def("cuda_tile_plan(Tensor indptr, int variant=-1) -> Tensor", &augcore::cuda_tile_plan);
  m.def("cuda_cluster_cap() -> int", &augcore::cuda_cluster_cap);
  // (errors e (N,C) f32, loss (N,) f32, |e|^2 (N,) f32, |h|^2 (N,) f32 or empty). loss: 0 = CE, 1 = squared.
  m.def("grad_proxies(Tensor logits, Tensor labels, Tensor? embeddings, int loss) -> (Tensor, Tensor, Tensor, Tensor)");
  // Squared distances inside each CSR group (x sorted by group), blocks of n_g^2 back to back.
  // With embeddings: between exact last-layer gradients [e (x) h, sqrt(bias) e], factored.
  m.def("pairwise_sqdist(Tensor x, Tensor? embeddings, Tensor indptr, float bias) -> Tensor");
  // Segmented facility-location greedy. indptr/budgets are host int64 tensors. similarity (kind 2 only):
  // candidate-major blocks, block[c * n + i] = s_ic. Returns positions in sorted order:
  // (picks (K,) i64 greedy order per group, gains (K,) f64, gamma (K,) i64, assignment (N,) i64 or -1,
  //  objective (G,) f64, seconds (2,) f64 [similarity, greedy] wall-clock on the CPU, device time on CUDA).
  // similarity_kind: 0 exp(-d / scale), 1 max d - d (craig), 2 precomputed, 3 max d^2 - d^2 with d^2
  // accumulated in double and rounded once (apricot's euclidean; CPU only).
  // tie_break: 0 = the smaller index wins an exact tie in gains; 1 = the larger, and lazy (method 1)
  // runs submodlib's LazyGreedy step for step.
  m.def(
      "facility_location(Tensor x, Tensor? embeddings, Tensor? similarity, Tensor indptr, Tensor budgets, "
      "int similarity_kind, float scale, float bias, int method, float eps, int seed, int mode, int memory_limit, "
      "int tie_break=0) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(augcore, CPU, m) {
  m.impl("grad_proxies", &augcore::grad_proxies_cpu);
  m.impl("pairwise_sqdist", &augcore::pairwise_sqdist_cpu);
  m.impl("facility_location", &augcore::facility_location_cpu);
}

#ifdef AUGCORE_WITH_CUDA
TORCH_LIBRARY_IMPL(augcore, CUDA, m) {
  m.impl("grad_proxies", &augcore::grad_proxies_cuda);
  m.impl("pairwise_sqdist", &augcore::pairwise_sqdist_cuda);
  m.impl("facility_location", &augcore::facility_location_cuda);
}
#endif

// A Python module with no functions: importing it loads the library and runs the
// registrations above, which is all Python needs (ops live in torch.ops.augcore).
static struct PyModuleDef augcore_module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&augcore_module); }
