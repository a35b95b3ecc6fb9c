// Filling a group's symmetric n x n matrix from its pair geometry, in row blocks.
#pragma once
#include "geometry.h"

namespace augcore {
namespace cpu {

constexpr int64_t kRowBlock = 16;

// S[i * n + j] = transform(d^2(i, j)); transform(values, len) rewrites an array in place. Each row block computes its rows from the
// diagonal rightwards and mirrors them below the diagonal (one cache line per
// mirrored row), so every pair is computed once.
template <typename Transform>
void fill_symmetric_block(const GroupGeometry& geo, float* S, Transform transform, bool parallel) {
  const int64_t n = geo.size();
  const int64_t num_blocks = (n + kRowBlock - 1) / kRowBlock;
#pragma omp parallel if (parallel && num_blocks > 1)
  {
    std::vector<float> tile(static_cast<size_t>(kRowBlock * n)), scratch(geo.scratch_size(kRowBlock, n));
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < num_blocks; ++b) {
      const int64_t i0 = b * kRowBlock, rows = std::min(kRowBlock, n - i0), w = n - i0;
      geo.sqdist_tile(i0, rows, i0, n, tile.data(), scratch.data());
      for (int64_t r = 0; r < rows; ++r) {
        float* t = tile.data() + r * w;
        transform(t, w);
        std::memcpy(S + (i0 + r) * n + i0, t, sizeof(float) * w);
      }
      for (int64_t j = i0 + rows; j < n; ++j)
        for (int64_t r = 0; r < rows; ++r) S[j * n + i0 + r] = tile[r * w + (j - i0)];
    }
  }
}

}  // namespace cpu
}  // namespace augcore
