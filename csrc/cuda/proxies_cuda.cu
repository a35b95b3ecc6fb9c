// Gradient proxies on the GPU: one warp per example, float accumulation (double
// for float64 inputs), on the current torch stream. Row sums in the fixed lane order and
// exp/ln from common/softmax.h: the CPU kernel's outputs, bit for bit.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "../checks.h"
#include "../common/softmax.h"
#include "../ops.h"
#include "utils.cuh"

namespace augcore {
namespace cuda {

template <typename scalar_t, typename acc_t>
__global__ void grad_proxies_kernel(const scalar_t* __restrict__ z, const int64_t* __restrict__ y, int64_t N,
                                    int64_t C, int64_t loss, float* __restrict__ e, float* __restrict__ per_example,
                                    float* __restrict__ error_sq) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= N) return;
  const scalar_t* zi = z + row * C;
  const int64_t label = y[row];
  acc_t zmax = -INFINITY, total = 0, sq = 0;
  // warp_sum's shuffle tree is the fixed order of lane_order_sum (common/softmax.h)
  if (loss == kCrossEntropy) {
    for (int64_t c = lane; c < C; c += kWarp) zmax = max(zmax, static_cast<acc_t>(zi[c]));
    zmax = canonical_max(warp_max(zmax));
    for (int64_t c = lane; c < C; c += kWarp) total += softmax_exp(static_cast<acc_t>(zi[c]) - zmax);
    total = warp_sum(total);
  }
  for (int64_t c = lane; c < C; c += kWarp) {
    const acc_t zc = static_cast<acc_t>(zi[c]);
    const acc_t target = c == label ? acc_t(1) : acc_t(0);
    const acc_t v = loss == kCrossEntropy ? softmax_exp(zc - zmax) / total - target : zc - target;
    e[row * C + c] = static_cast<float>(v);
    sq += v * v;
  }
  sq = warp_sum(sq);
  if (lane == 0) {
    error_sq[row] = static_cast<float>(sq);
    per_example[row] = loss == kCrossEntropy
                           ? static_cast<float>(softmax_log(total) + (zmax - static_cast<acc_t>(zi[label])))
                           : static_cast<float>(sq / 2);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void row_sqnorm_kernel(const scalar_t* __restrict__ h, int64_t N, int64_t H, float* __restrict__ out) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= N) return;
  acc_t s = 0;
  for (int64_t k = lane; k < H; k += kWarp) {
    const acc_t v = static_cast<acc_t>(h[row * H + k]);
    s += v * v;
  }
  s = warp_sum(s);
  if (lane == 0) out[row] = static_cast<float>(s);
}

}  // namespace cuda

ProxiesOut grad_proxies_cuda(const at::Tensor& logits, const at::Tensor& labels,
                             const std::optional<at::Tensor>& embeddings, int64_t loss) {
  check_grad_proxies_args(logits, labels, embeddings, loss);
  TORCH_CHECK_VALUE(logits.is_cuda(), "grad_proxies: logits must be a CUDA tensor here");
  const c10::cuda::CUDAGuard guard(logits.device());
  const int64_t N = logits.size(0), C = logits.size(1);
  auto fopts = logits.options().dtype(at::kFloat);
  auto errors = at::empty({N, C}, fopts);
  auto per_example = at::empty({N}, fopts);
  auto error_sq = at::empty({N}, fopts);
  auto emb_sq = at::empty({embeddings ? N : 0}, fopts);
  if (N > 0) {
    // One synchronisation validates what the kernels read: the label range (an index into each
    // row) and finite inputs.
    const auto [lo, hi] = at::aminmax(labels);
    std::vector<at::Tensor> stats{lo.to(at::kDouble).reshape({1}), hi.to(at::kDouble).reshape({1}),
                                  at::isfinite(logits).all().to(at::kDouble).reshape({1})};
    if (embeddings) stats.push_back(at::isfinite(*embeddings).all().to(at::kDouble).reshape({1}));
    const at::Tensor host = at::cat(stats).cpu();
    const double* h = host.data_ptr<double>();
    TORCH_CHECK_VALUE(h[0] >= 0 && h[1] < static_cast<double>(C), "grad_proxies: labels must lie in [0, C = ", C,
                      "), got values in [", static_cast<int64_t>(h[0]), ", ", static_cast<int64_t>(h[1]), "]");
    TORCH_CHECK_VALUE(h[2] != 0.0, "grad_proxies: logits contain a non-finite value");
    TORCH_CHECK_VALUE(!embeddings || h[3] != 0.0, "grad_proxies: embeddings contain a non-finite value");
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  constexpr int kThreads = 256;
  const auto blocks = [&](int64_t rows) {
    return static_cast<unsigned>((rows * cuda::kWarp + kThreads - 1) / kThreads);
  };
  if (N > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "grad_proxies_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      cuda::grad_proxies_kernel<scalar_t, acc_t><<<blocks(N), kThreads, 0, stream>>>(
          logits.data_ptr<scalar_t>(), labels.data_ptr<int64_t>(), N, C, loss, errors.data_ptr<float>(),
          per_example.data_ptr<float>(), error_sq.data_ptr<float>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (embeddings) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, embeddings->scalar_type(), "row_sqnorm_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        cuda::row_sqnorm_kernel<scalar_t, acc_t><<<blocks(N), kThreads, 0, stream>>>(
            embeddings->data_ptr<scalar_t>(), N, embeddings->size(1), emb_sq.data_ptr<float>());
      });
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  }
  return {errors, per_example, error_sq, emb_sq};
}

}  // namespace augcore
