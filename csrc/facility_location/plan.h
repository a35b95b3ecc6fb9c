// Host-side part of facility_location shared by the CPU and CUDA front doors: the
// device-neutral argument checks, the per-group offsets, and the stochastic sample
// size, so that both devices accept the same inputs and sample the same way.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "../checks.h"
#include "../ops.h"

namespace augcore {

// ceil(n / k * ln(1 / eps)) clamped to [1, n]: candidates evaluated per stochastic-greedy
// step (k > 0). The clamp happens in double, before the cast, so no eps can make the count
// negative or overflow int64 (plan_facility_location also rejects a non-finite ln(1/eps)).
inline int64_t stochastic_sample_size(int64_t n, int64_t k, double eps) {
  const double size = std::ceil(static_cast<double>(n) / static_cast<double>(k) * std::log(1.0 / eps));
  if (!(size >= 1.0)) return 1;  // also NaN
  return size >= static_cast<double>(n) ? n : static_cast<int64_t>(size);
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
                                                   int64_t similarity_kind, double scale, double bias, int64_t method,
                                                   double eps, int64_t mode, int64_t memory_limit, int64_t tie_break) {
  constexpr const char* op = "facility_location";
  check_float_matrix(x, "x", op);
  TORCH_CHECK_VALUE(method >= kNaive && method <= kStochastic, op, ": method must be 0 (naive), 1 (lazy) or 2 (stochastic), got ",
                    method);
  TORCH_CHECK_VALUE(similarity_kind >= kExp && similarity_kind <= kCraigSquared, op,
                    ": similarity_kind must be 0 (exp), 1 (craig), 2 (precomputed) or 3 (craig_squared), got ",
                    similarity_kind);
  TORCH_CHECK_VALUE(mode >= kAuto && mode <= kOnTheFly, op, ": mode must be 0 (auto), 1 (dense) or 2 (on_the_fly), got ",
                    mode);
  TORCH_CHECK_VALUE(tie_break >= kTiesLow && tie_break <= kTiesApricot, op,
                    ": tie_break must be 0 (low), 1 (high) or 2 (apricot), got ", tie_break);
  TORCH_CHECK_VALUE(eps > 0.0 && eps < 1.0, op, ": eps must lie in (0, 1), got ", eps);
  // 1/eps overflows to inf below ~5.6e-309 (a subnormal eps): the sample size would be meaningless
  TORCH_CHECK_VALUE(std::isfinite(std::log(1.0 / eps)), op, ": eps = ", eps,
                    " is too small: ln(1/eps) is not finite (eps must be at least ~5.6e-309)");
  // the similarity uses -1/scale as a float: it must be a finite negative number
  const float neg_inv_scale = static_cast<float>(-1.0 / scale);
  TORCH_CHECK_VALUE(scale > 0.0 && std::isfinite(neg_inv_scale), op, ": scale must be a positive number whose inverse is a "
                    "finite float32, got ", scale);
  TORCH_CHECK_VALUE(std::isfinite(bias) && bias >= 0.0, op, ": bias must be finite and >= 0, got ", bias);
  TORCH_CHECK_VALUE(memory_limit >= 0, op, ": memory_limit must be >= 0 bytes, got ", memory_limit);
  TORCH_CHECK_VALUE((similarity_kind == kPrecomputed) == similarity.has_value(), op,
                    ": a similarity tensor goes with similarity_kind 2 (precomputed) only");
  FacilityLocationPlan plan;
  plan.N = x.size(0);
  plan.D = x.size(1);
  plan.indptr = checked_indptr(indptr, plan.N, op);
  plan.budgets = checked_budgets(budgets, plan.indptr, op);
  plan.G = plan.indptr.numel() - 1;
  plan.p = plan.indptr.data_ptr<int64_t>();
  plan.k = plan.budgets.data_ptr<int64_t>();
  const int64_t G = plan.G;
  if (embeddings.has_value()) {
    check_float_matrix(*embeddings, "embeddings", op);
    TORCH_CHECK_VALUE(embeddings->device() == x.device() && embeddings->size(0) == plan.N, op,
                      ": embeddings must have N = ", plan.N, " rows on x's device, got shape ", embeddings->sizes(),
                      " on ", embeddings->device());
    plan.H = embeddings->size(1);
  }
  plan.sel_ptr.assign(G + 1, 0);
  plan.sim_ptr.assign(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = plan.p[g + 1] - plan.p[g];
    plan.sel_ptr[g + 1] = plan.sel_ptr[g] + plan.k[g];
    plan.sim_ptr[g + 1] = plan.sim_ptr[g] + n * n;
    plan.active += plan.k[g] > 0;
  }
  if (similarity.has_value()) {
    TORCH_CHECK_TYPE(similarity->scalar_type() == at::kFloat, op, ": similarity must be float32, got ",
                     similarity->scalar_type());
    TORCH_CHECK_VALUE(similarity->device() == x.device() && similarity->is_contiguous() &&
                          similarity->numel() == plan.sim_ptr[G],
                      op, ": similarity must be contiguous float32 blocks of n_g^2 entries (", plan.sim_ptr[G],
                      " in all) on x's device, got ", similarity->numel(), " entries on ", similarity->device());
  }
  return plan;
}

}  // namespace augcore
