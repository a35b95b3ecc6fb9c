// The kernel surface of augcore: one declaration per op and device.
// Schemas and per-op documentation live in torch_bindings.cpp.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace augcore {

// The integer encodings of the ops' enum arguments. This header is their one definition: the
// Python name tables (augcore/ops/proxies.py LOSSES; augcore/ops/facility_location.py METHODS,
// SIMILARITIES, MODES, TIE_BREAKS; the Triton host code's kinds) are checked against it by
// python_tests/test_ops_encodings.py, which parses these enums.
enum LossKind : int64_t { kCrossEntropy = 0, kSquared = 1 };
// kCraigSquared: s = max d^2 - d^2 with d^2 accumulated in double (apricot's euclidean); CPU only.
enum SimilarityKind : int64_t { kExp = 0, kCraig = 1, kPrecomputed = 2, kCraigSquared = 3 };
enum GreedyMethod : int64_t { kNaive = 0, kLazy = 1, kStochastic = 2 };
enum StorageMode : int64_t { kAuto = 0, kDense = 1, kOnTheFly = 2 };
// Which index wins an exact tie in gains: the smaller (default) or, as submodlib, the larger;
// kTiesApricot: the smaller, and lazy runs apricot's LazyGreedy (first evaluated wins).
enum TieBreak : int64_t { kTiesLow = 0, kTiesHigh = 1, kTiesApricot = 2 };

using ProxiesOut = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using FacilityLocationOut = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

ProxiesOut grad_proxies_cpu(const at::Tensor& logits, const at::Tensor& labels,
                            const std::optional<at::Tensor>& embeddings, int64_t loss);
at::Tensor pairwise_sqdist_cpu(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                               const at::Tensor& indptr, double bias);
FacilityLocationOut facility_location_cpu(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                          const std::optional<at::Tensor>& similarity, const at::Tensor& indptr,
                                          const at::Tensor& budgets, int64_t similarity_kind, double scale,
                                          double bias, int64_t method, double eps, int64_t seed, int64_t mode,
                                          int64_t memory_limit, int64_t tie_break);

#ifdef AUGCORE_WITH_CUDA
ProxiesOut grad_proxies_cuda(const at::Tensor& logits, const at::Tensor& labels,
                             const std::optional<at::Tensor>& embeddings, int64_t loss);
at::Tensor pairwise_sqdist_cuda(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                const at::Tensor& indptr, double bias);
FacilityLocationOut facility_location_cuda(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                           const std::optional<at::Tensor>& similarity, const at::Tensor& indptr,
                                           const at::Tensor& budgets, int64_t similarity_kind, double scale,
                                           double bias, int64_t method, double eps, int64_t seed, int64_t mode,
                                           int64_t memory_limit, int64_t tie_break);
#endif

}  // namespace augcore
