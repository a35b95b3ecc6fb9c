// Gradient proxies on the CPU: one pass per row, accumulation in float (double
// for float64 inputs), in the fixed order and with the exp/ln of common/softmax.h, so that
// the outputs equal the CUDA kernel's bit for bit.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include "../checks.h"
#include "../common/softmax.h"
#include "../ops.h"

namespace augcore {

ProxiesOut grad_proxies_cpu(const at::Tensor& logits, const at::Tensor& labels,
                            const std::optional<at::Tensor>& embeddings, int64_t loss) {
  check_grad_proxies_args(logits, labels, embeddings, loss);
  const int64_t N = logits.size(0), C = logits.size(1);
  auto fopts = logits.options().dtype(at::kFloat);
  auto errors = at::empty({N, C}, fopts);
  auto per_example = at::empty({N}, fopts);
  auto error_sq = at::empty({N}, fopts);
  auto emb_sq = at::empty({embeddings ? N : 0}, fopts);
  const int64_t* y = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    TORCH_CHECK_VALUE(y[i] >= 0 && y[i] < C, "grad_proxies: labels must lie in [0, C = ", C, "), got ", y[i], " at row ",
                      i);
  TORCH_CHECK_VALUE(at::isfinite(logits).all().item<bool>(), "grad_proxies: logits contain a non-finite value");
  if (embeddings)
    TORCH_CHECK_VALUE(at::isfinite(*embeddings).all().item<bool>(), "grad_proxies: embeddings contain a non-finite value");

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "grad_proxies_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* z = logits.data_ptr<scalar_t>();
    float* e = errors.data_ptr<float>();
    float* l = per_example.data_ptr<float>();
    float* esq = error_sq.data_ptr<float>();
    at::parallel_for(0, N, 256, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const scalar_t* zi = z + i * C;
        float* ei = e + i * C;
        const auto z_at = [&](int64_t c) { return static_cast<acc_t>(zi[c]); };
        const auto target = [&](int64_t c) { return c == y[i] ? acc_t(1) : acc_t(0); };
        acc_t sq = 0;
        if (loss == kCrossEntropy) {
          acc_t zmax = z_at(0);
          for (int64_t c = 1; c < C; ++c) zmax = std::max(zmax, z_at(c));
          zmax = canonical_max(zmax);
          const acc_t total = lane_order_sum<acc_t>(C, [&](int64_t c) { return softmax_exp(z_at(c) - zmax); });
          for (int64_t c = 0; c < C; ++c) ei[c] = static_cast<float>(softmax_exp(z_at(c) - zmax) / total - target(c));
          sq = lane_order_sum<acc_t>(C, [&](int64_t c) {
            const acc_t v = softmax_exp(z_at(c) - zmax) / total - target(c);
            return v * v;
          });
          l[i] = static_cast<float>(softmax_log(total) + (zmax - z_at(y[i])));
        } else {
          for (int64_t c = 0; c < C; ++c) ei[c] = static_cast<float>(z_at(c) - target(c));
          sq = lane_order_sum<acc_t>(C, [&](int64_t c) {
            const acc_t v = z_at(c) - target(c);
            return v * v;
          });
          l[i] = static_cast<float>(sq / 2);
        }
        esq[i] = static_cast<float>(sq);
      }
    });
  });
  if (embeddings) {
    const int64_t H = embeddings->size(1);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, embeddings->scalar_type(), "grad_proxies_emb", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const scalar_t* h = embeddings->data_ptr<scalar_t>();
      float* out = emb_sq.data_ptr<float>();
      at::parallel_for(0, N, 256, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          out[i] = static_cast<float>(lane_order_sum<acc_t>(H, [&](int64_t k) {
            const acc_t v = static_cast<acc_t>(h[i * H + k]);
            return v * v;
          }));
        }
      });
    });
  }
  return {errors, per_example, error_sq, emb_sq};
}

}  // namespace augcore
