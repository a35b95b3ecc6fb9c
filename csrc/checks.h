// Argument checks shared by the ops' front doors. The registered ops are public API
// for other frameworks, so each validates what it is given before touching memory.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <string>

#include "ops.h"

namespace augcore {

// indptr: a 1-D host integer tensor of G + 1 offsets, 0 = indptr[0] <= ... <= indptr[G] = n
// (any end when n < 0). Returns it as contiguous int64.
inline at::Tensor checked_indptr(const at::Tensor& indptr, int64_t n, const char* op) {
  TORCH_CHECK_TYPE(at::isIntegralType(indptr.scalar_type(), /*includeBool=*/false),
                   op, ": indptr must be an integer tensor, got ", indptr.scalar_type());
  TORCH_CHECK_VALUE(indptr.dim() == 1 && indptr.numel() >= 1, op, ": indptr must be 1-D with G + 1 >= 1 entries, got shape ",
                    indptr.sizes());
  TORCH_CHECK_VALUE(indptr.device().is_cpu(), op, ": indptr must be a host (CPU) tensor, got one on ", indptr.device());
  at::Tensor ptr = indptr.to(at::kLong).contiguous();
  const int64_t* p = ptr.data_ptr<int64_t>();
  const int64_t G = ptr.numel() - 1;
  TORCH_CHECK_VALUE(p[0] == 0, op, ": indptr must start at 0, got ", p[0]);
  for (int64_t g = 0; g < G; ++g)
    TORCH_CHECK_VALUE(p[g + 1] >= p[g], op, ": indptr must be non-decreasing, but indptr[", g + 1, "] = ", p[g + 1],
                      " < indptr[", g, "] = ", p[g]);
  TORCH_CHECK_VALUE(n < 0 || p[G] == n, op, ": indptr must end at N = ", n, " (the number of rows), got ", p[G]);
  return ptr;
}

// budgets: a 1-D host integer tensor of G entries, 0 <= budgets[g] <= group size.
inline at::Tensor checked_budgets(const at::Tensor& budgets, const at::Tensor& ptr, const char* op) {
  TORCH_CHECK_TYPE(at::isIntegralType(budgets.scalar_type(), /*includeBool=*/false),
                   op, ": budgets must be an integer tensor, got ", budgets.scalar_type());
  TORCH_CHECK_VALUE(budgets.device().is_cpu(), op, ": budgets must be a host (CPU) tensor, got one on ",
                    budgets.device());
  const int64_t G = ptr.numel() - 1;
  TORCH_CHECK_VALUE(budgets.dim() == 1 && budgets.numel() == G, op, ": budgets must be 1-D with one entry per group (",
                    G, "), got shape ", budgets.sizes());
  at::Tensor b = budgets.to(at::kLong).contiguous();
  const int64_t* p = ptr.data_ptr<int64_t>();
  const int64_t* k = b.data_ptr<int64_t>();
  for (int64_t g = 0; g < G; ++g)
    TORCH_CHECK_VALUE(k[g] >= 0 && k[g] <= p[g + 1] - p[g], op, ": budget ", k[g], " of group ", g,
                      " out of range [0, ", p[g + 1] - p[g], "] (the group's size)");
  return b;
}

// A float32 (rows, cols) matrix, contiguous, on `device` when given.
inline void check_float_matrix(const at::Tensor& t, const char* name, const char* op) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat, op, ": ", name, " must be float32, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 2, op, ": ", name, " must be 2-D, got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

// grad_proxies' device-neutral checks: shapes, dtypes, devices and the loss code.
inline void check_grad_proxies_args(const at::Tensor& logits, const at::Tensor& labels,
                                    const std::optional<at::Tensor>& embeddings, int64_t loss) {
  constexpr const char* op = "grad_proxies";
  TORCH_CHECK_TYPE(at::isFloatingType(logits.scalar_type()), op, ": logits must be floating point, got ",
                   logits.scalar_type());
  TORCH_CHECK_VALUE(logits.dim() == 2 && logits.is_contiguous(), op, ": logits must be a contiguous (N, C) tensor, got shape ",
                    logits.sizes());
  TORCH_CHECK_TYPE(labels.scalar_type() == at::kLong, op, ": labels must be int64, got ", labels.scalar_type());
  TORCH_CHECK_VALUE(labels.dim() == 1 && labels.size(0) == logits.size(0) && labels.is_contiguous(), op,
                    ": labels must be a contiguous (N,) tensor with N = ", logits.size(0), ", got shape ", labels.sizes());
  TORCH_CHECK_VALUE(labels.device() == logits.device(), op, ": labels are on ", labels.device(), " but logits on ",
                    logits.device());
  TORCH_CHECK_VALUE(loss == kCrossEntropy || loss == kSquared, op, ": loss must be 0 (cross-entropy) or 1 (squared), got ",
                    loss);
  if (embeddings) {
    TORCH_CHECK_TYPE(at::isFloatingType(embeddings->scalar_type()), op, ": embeddings must be floating point, got ",
                     embeddings->scalar_type());
    TORCH_CHECK_VALUE(embeddings->dim() == 2 && embeddings->size(0) == logits.size(0) && embeddings->is_contiguous(), op,
                      ": embeddings must be a contiguous (N, H) tensor with N = ", logits.size(0), ", got shape ",
                      embeddings->sizes());
    TORCH_CHECK_VALUE(embeddings->device() == logits.device(), op, ": embeddings are on ", embeddings->device(),
                      " but logits on ", logits.device());
  }
}

}  // namespace augcore
