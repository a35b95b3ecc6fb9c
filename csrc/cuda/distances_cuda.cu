// Pairwise squared distances inside groups on the GPU (proxy space or exact
// last-layer gradients): one launch tiles every group's symmetric block.
// Values equal the CPU kernel's bit for bit (see geometry.cuh). Runs on the
// current torch stream; the only host work is reading the host indptr.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cmath>
#include <vector>

#include "../checks.h"
#include "../ops.h"
#include "geometry.cuh"

namespace augcore {
namespace cuda {

__global__ void row_gradient_sqnorm_kernel(Geometry g, int64_t N, float* __restrict__ sq) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= N) return;
  float se = 0.0f, sh = 0.0f;
  for (int64_t k = 0; k < g.D; ++k) se = mul_add_rn(se, g.x[i * g.D + k], g.x[i * g.D + k]);
  for (int64_t k = 0; k < g.H; ++k) sh = mul_add_rn(sh, g.h[i * g.H + k], g.h[i * g.H + k]);
  sq[i] = __fmul_rn(se, __fadd_rn(sh, g.bias));
}

void launch_row_gradient_sqnorm(const Geometry& g, int64_t N, float* sq, cudaStream_t stream) {
  if (N == 0) return;
  constexpr int kThreads = 256;
  row_gradient_sqnorm_kernel<<<static_cast<unsigned>((N + kThreads - 1) / kThreads), kThreads, 0, stream>>>(g, N, sq);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda

at::Tensor pairwise_sqdist_cuda(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                const at::Tensor& indptr, double bias) {
  constexpr const char* op = "pairwise_sqdist";
  check_float_matrix(x, "x", op);
  TORCH_CHECK_VALUE(x.is_cuda(), op, ": x must be a CUDA tensor here");
  const bool exact = embeddings.has_value();
  if (exact) {
    check_float_matrix(*embeddings, "embeddings", op);
    TORCH_CHECK_VALUE(embeddings->device() == x.device() && embeddings->size(0) == x.size(0), op,
                      ": embeddings must have N = ", x.size(0), " rows on x's device, got shape ", embeddings->sizes());
  }
  TORCH_CHECK_VALUE(std::isfinite(bias) && bias >= 0.0, op, ": bias must be finite and >= 0, got ", bias);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto ptr = checked_indptr(indptr, x.size(0), op);
  const int64_t G = ptr.numel() - 1, N = x.size(0);
  const int64_t* p = ptr.data_ptr<int64_t>();

  // Host-side layout: [tile_ptr (G'+1) | groups (G') | indptr (G+1) | out_off (G')] over non-empty groups.
  std::vector<int64_t> groups, tile_ptr{0}, out_off;
  int64_t total = 0;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = p[g + 1] - p[g];
    if (n > 0) {
      const int64_t T = (n + cuda::kTile - 1) / cuda::kTile;
      groups.push_back(g);
      out_off.push_back(total);
      tile_ptr.push_back(tile_ptr.back() + T * T);
    }
    total += n * n;
  }
  auto out = at::empty({total}, x.options());
  if (groups.empty()) return out;
  const int64_t L = static_cast<int64_t>(groups.size());
  std::vector<int64_t> meta;
  meta.insert(meta.end(), tile_ptr.begin(), tile_ptr.end());
  meta.insert(meta.end(), groups.begin(), groups.end());
  meta.insert(meta.end(), p, p + G + 1);
  meta.insert(meta.end(), out_off.begin(), out_off.end());
  // Pinned staging + non-blocking copy: stream-ordered, no host synchronisation.
  auto meta_dev = at::from_blob(meta.data(), {static_cast<int64_t>(meta.size())}, at::kLong)
                      .pin_memory()
                      .to(x.device(), /*non_blocking=*/true);
  const int64_t* m = meta_dev.data_ptr<int64_t>();
  cuda::TileList list{m, m + L + 1, m + 2 * L + 1, m + 2 * L + G + 2, L};

  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor sq;
  cuda::Geometry geo{x.data_ptr<float>(), nullptr, nullptr, x.size(1), 0, static_cast<float>(bias)};
  if (exact) {
    sq = at::empty({N}, x.options());
    geo.h = embeddings->data_ptr<float>();
    geo.H = embeddings->size(1);
    geo.sq = sq.data_ptr<float>();
    cuda::launch_row_gradient_sqnorm(geo, N, sq.data_ptr<float>(), stream);
  }
  const int64_t tiles = tile_ptr.back();
  TORCH_CHECK(tiles < (int64_t{1} << 31), "pairwise_sqdist: too many tiles for one launch (", tiles, ")");
  cuda::launch_group_tiles<cuda::kStoreSqdist>(tile_variant_from_env(), tiles, geo, list,
                                               cuda::Transform{kExp, -1.0f, 0.0f}, out.data_ptr<float>(), nullptr,
                                               stream);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace augcore
