// Pairwise squared distances inside groups (proxy space or exact last-layer gradients).
#include "../checks.h"
#include "../ops.h"
#include "distances_cpu.h"

namespace augcore {

at::Tensor pairwise_sqdist_cpu(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                               const at::Tensor& indptr, double bias) {
  constexpr const char* op = "pairwise_sqdist";
  check_float_matrix(x, "x", op);
  const bool exact = embeddings.has_value();
  if (exact) {
    check_float_matrix(*embeddings, "embeddings", op);
    TORCH_CHECK_VALUE(embeddings->device() == x.device() && embeddings->size(0) == x.size(0), op,
                      ": embeddings must have N = ", x.size(0), " rows on x's device, got shape ", embeddings->sizes());
  }
  TORCH_CHECK_VALUE(std::isfinite(bias) && bias >= 0.0, op, ": bias must be finite and >= 0, got ", bias);
  const auto ptr = checked_indptr(indptr, x.size(0), op);
  const int64_t G = ptr.numel() - 1;
  const int64_t* p = ptr.data_ptr<int64_t>();
  std::vector<int64_t> offsets(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) offsets[g + 1] = offsets[g] + (p[g + 1] - p[g]) * (p[g + 1] - p[g]);
  auto out = at::empty({offsets[G]}, x.options());
  const int64_t D = x.size(1), H = exact ? embeddings->size(1) : 0;
  const float* xs = x.data_ptr<float>();
  const float* hs = exact ? embeddings->data_ptr<float>() : nullptr;
  float* o = out.data_ptr<float>();
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = p[g + 1] - p[g];
    if (n == 0) continue;
    cpu::GroupGeometry geo(xs + p[g] * D, n, D, hs ? hs + p[g] * H : nullptr, H, static_cast<float>(bias));
    cpu::fill_symmetric_block(geo, o + offsets[g], [](float*, int64_t) {}, /*parallel=*/true);
  }
  return out;
}

}  // namespace augcore
