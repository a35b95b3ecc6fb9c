// Host-side part of facility_location shared by the CPU and CUDA front doors: the
// device-neutral argument checks, the per-group offsets, and the stochastic sample
// size, so that both devices accept the same inputs and sample the same way.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <vector>

#include "ops.h"

namespace augcore {

// ceil(n / k * ln(1 / eps)): candidates evaluated per stochastic-greedy step (k > 0).
inline int64_t stochastic_sample_size(int64_t n, int64_t k, double eps) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(n) / static_cast<double>(k) * std::log(1.0 / eps)));
}

struct FacilityLocationPlan {
  at::Tensor indptr, budgets;  // host int64, contiguous
  const int64_t* p = nullptr;  // group g owns sorted rows [p[g], p[g+1])
  const int64_t* k = nullptr;  // group budgets
  int64_t G = 0, N = 0, D = 0, H = 0;
  std::vector<int64_t> sel_ptr, sim_ptr;  // offsets of each group's picks / n_g^2 similarity block
  int64_t active = 0;                     // groups with a budget > 0
};

inline FacilityLocationPlan plan_facility_location(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                                   const std::optional<at::Tensor>& similarity,
                                                   const at::Tensor& indptr, const at::Tensor& budgets,
                                                   int64_t similarity_kind, double scale, int64_t method, double eps,
                                                   int64_t mode) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "facility_location: x must be a contiguous float32 (N, D) tensor");
  TORCH_CHECK(method >= kNaive && method <= kStochastic, "facility_location: unknown method ", method);
  TORCH_CHECK(similarity_kind >= kExp && similarity_kind <= kPrecomputed, "facility_location: unknown similarity");
  TORCH_CHECK(mode >= kAuto && mode <= kOnTheFly, "facility_location: unknown mode ", mode);
  TORCH_CHECK(eps > 0.0 && eps < 1.0, "facility_location: eps must lie in (0, 1), got ", eps);
  TORCH_CHECK(scale > 0.0, "facility_location: scale must be positive");
  TORCH_CHECK((similarity_kind == kPrecomputed) == similarity.has_value(),
              "facility_location: a similarity tensor goes with kind 2 only");
  TORCH_CHECK(indptr.device().is_cpu() && budgets.device().is_cpu(),
              "facility_location: indptr and budgets must be host int64 tensors");
  FacilityLocationPlan plan;
  plan.indptr = indptr.to(at::kLong).contiguous();
  plan.budgets = budgets.to(at::kLong).contiguous();
  plan.G = plan.indptr.numel() - 1;
  plan.N = x.size(0);
  plan.D = x.size(1);
  plan.p = plan.indptr.data_ptr<int64_t>();
  plan.k = plan.budgets.data_ptr<int64_t>();
  const int64_t G = plan.G;
  TORCH_CHECK(G >= 0 && plan.budgets.numel() == G && plan.p[0] == 0 && plan.p[G] == plan.N,
              "facility_location: indptr/budgets mismatch");
  if (embeddings.has_value()) {
    TORCH_CHECK(embeddings->device() == x.device() && embeddings->dim() == 2 && embeddings->size(0) == plan.N &&
                    embeddings->is_contiguous() && embeddings->scalar_type() == at::kFloat,
                "facility_location: embeddings must be a contiguous float32 (N, H) tensor on x's device");
    plan.H = embeddings->size(1);
  }
  plan.sel_ptr.assign(G + 1, 0);
  plan.sim_ptr.assign(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = plan.p[g + 1] - plan.p[g];
    TORCH_CHECK(n >= 0 && plan.k[g] >= 0 && plan.k[g] <= n, "facility_location: budget ", plan.k[g], " of group ", g,
                " out of range [0, ", n, "]");
    plan.sel_ptr[g + 1] = plan.sel_ptr[g] + plan.k[g];
    plan.sim_ptr[g + 1] = plan.sim_ptr[g] + n * n;
    plan.active += plan.k[g] > 0;
  }
  if (similarity.has_value())
    TORCH_CHECK(similarity->device() == x.device() && similarity->scalar_type() == at::kFloat &&
                    similarity->is_contiguous() && similarity->numel() == plan.sim_ptr[G],
                "facility_location: precomputed similarity must be float32 blocks of n_g^2 entries on x's device");
  return plan;
}

}  // namespace augcore
