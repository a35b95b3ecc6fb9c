// Pairwise squared distances inside groups (proxy space or exact last-layer gradients).
#include "../ops.h"
#include "distances_cpu.h"

namespace augcore {

at::Tensor pairwise_sqdist_cpu(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                               const at::Tensor& indptr, double bias) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "pairwise_sqdist: x must be a contiguous float32 (N, D) tensor");
  const bool exact = embeddings.has_value();
  if (exact)
    TORCH_CHECK(embeddings->dim() == 2 && embeddings->size(0) == x.size(0) && embeddings->is_contiguous() &&
                    embeddings->scalar_type() == at::kFloat,
                "pairwise_sqdist: embeddings must be a contiguous float32 (N, H) tensor");
  const auto ptr = indptr.to(at::kLong).contiguous();
  const int64_t G = ptr.numel() - 1;
  const int64_t* p = ptr.data_ptr<int64_t>();
  TORCH_CHECK(G >= 0 && p[G] == x.size(0), "pairwise_sqdist: indptr must end at N");
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
