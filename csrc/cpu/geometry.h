// The CPU kernels' within-group pair geometry (distances computed by one code path
// for every caller), and the OpenMP thread helpers they share. The exp of the similarity is
// common/exp.h, shared with the GPU.
//
// Determinism: these sources build with -ffp-contract=off and without
// -ffast-math (-fno-math-errno and -fno-trapping-math change no value), so the float32 value of a pair's distance does not depend on
// which kernel, mode or thread computes it. That is what makes dense and
// on-the-fly modes, and naive and lazy greedy, pick exactly the same elements.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../common/exp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace augcore {
namespace cpu {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_num() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Points of one group, sorted: proxies x (n x D) and, for the exact last-layer
// gradient, embeddings h (n x H). Column-major copies feed the j-vectorised loops.
// With double_sums, proxy-space squared distances are accumulated in double and
// rounded to float once: sklearn's float64 euclidean_distances, up to its own rounding.
class GroupGeometry {
  static constexpr int64_t kChunk = 64;

 public:
  GroupGeometry(const float* x, int64_t n, int64_t D, const float* h, int64_t H, float bias, bool double_sums = false)
      : x_(x), h_(h), n_(n), D_(D), H_(h ? H : 0), bias_(bias), double_sums_(double_sums) {
    xT_ = transpose(x, n, D);
    if (h_) {
      hT_ = transpose(h, n, H_);
      sq_.resize(n);
      for (int64_t i = 0; i < n; ++i) sq_[i] = self_dot(x_ + i * D_, D_) * (self_dot(h_ + i * H_, H_) + bias_);
    }
  }

  int64_t size() const { return n_; }

  // Squared distances of rows [i0, i0 + rows) to columns [j0, j1), into
  // out[r * (j1 - j0) + t]. Every pair is accumulated over k in order, whatever
  // the tile, so d(i, j) == d(j, i) exactly and d(i, i) == 0.
  void sqdist_tile(int64_t i0, int64_t rows, int64_t j0, int64_t j1, float* out, float* scratch) const {
    const int64_t w = j1 - j0;
    if (!h_) {
      if (double_sums_) {
        const auto squared_diff = [](float a, float b, double& acc) {
          const double d = static_cast<double>(a) - static_cast<double>(b);  // exact
          acc += d * d;
        };
        for_chunks<double>(i0, rows, j0, j1, out, squared_diff, x_, xT_, D_);
      } else {
        const auto squared_diff = [](float a, float b, float& acc) { acc += (a - b) * (a - b); };
        for_chunks<float>(i0, rows, j0, j1, out, squared_diff, x_, xT_, D_);
      }
      return;
    }
    // exact last-layer gradients: |g_i - g_j|^2 = A_i + A_j - 2 <e_i,e_j> (<h_i,h_j> + b)
    const auto dot = [](float a, float b, float& acc) { acc += a * b; };
    for_chunks<float>(i0, rows, j0, j1, out, dot, x_, xT_, D_);
    for_chunks<float>(i0, rows, j0, j1, scratch, dot, h_, hT_, H_);
    for (int64_t r = 0; r < rows; ++r) {
      const float ai = sq_[i0 + r];
      float* o = out + r * w;
      const float* dh = scratch + r * w;
      const float* aj = sq_.data() + j0;
#pragma omp simd
      for (int64_t t = 0; t < w; ++t) {
        const float v = (ai + aj[t]) - 2.0f * (o[t] * (dh[t] + bias_));
        o[t] = v > 0.0f ? v : 0.0f;  // NaN -> 0, as the GPU's fmaxf
      }
    }
  }

  // Scratch floats sqdist_tile needs for a rows x w tile.
  int64_t scratch_size(int64_t rows, int64_t w) const { return h_ ? rows * w : 0; }

 private:
  static std::vector<float> transpose(const float* a, int64_t n, int64_t d) {
    std::vector<float> t(static_cast<size_t>(n * d + kChunk), 0.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k) t[k * n + i] = a[i * d + k];
    return t;
  }
  // Sequential in k, like every accumulation in for_chunks(): the same value as the i == j entry.
  static float self_dot(const float* a, int64_t d) {
    float s = 0.0f;
    for (int64_t k = 0; k < d; ++k) s += a[k] * a[k];
    return s;
  }
  // out[r][t] = sum over k, in order, of step(a[i0 + r][k], a[j0 + t][k]) in Acc, rounded
  // to float. Columns go in chunks of kChunk so the accumulators stay in registers across
  // the k loop; the transposed copies are padded by kChunk so a short last chunk may read
  // past its end.
  template <typename Acc, typename Step>
  void for_chunks(int64_t i0, int64_t rows, int64_t j0, int64_t j1, float* out, Step step, const float* a,
                  const std::vector<float>& aT, int64_t d) const {
    const int64_t w = j1 - j0;
    for (int64_t c0 = 0; c0 < w; c0 += kChunk) {
      const int64_t len = std::min(kChunk, w - c0);
      for (int64_t r = 0; r < rows; ++r) {
        const float* ai = a + (i0 + r) * d;
        Acc acc[kChunk] = {};
        for (int64_t k = 0; k < d; ++k) {
          const float* col = aT.data() + k * n_ + j0 + c0;
          const float aik = ai[k];
#pragma omp simd
          for (int64_t t = 0; t < kChunk; ++t) step(aik, col[t], acc[t]);
        }
        float* o = out + r * w + c0;
        for (int64_t t = 0; t < len; ++t) o[t] = static_cast<float>(acc[t]);
      }
    }
  }

  const float* x_;
  const float* h_;
  int64_t n_, D_, H_;
  float bias_;
  bool double_sums_;
  std::vector<float> xT_, hT_, sq_;
};

}  // namespace cpu
}  // namespace augcore
