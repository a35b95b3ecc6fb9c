// Segmented facility-location greedy on the CPU.
//
// All groups are solved in one call: with at least as many non-empty groups as
// threads, groups run in parallel (largest first, one thread each); otherwise
// groups run one after another and each parallelises over candidates or over
// blocks of points. Marginal gains are integer sums of fixed-point terms
// (common/fixed_point.h): a candidate's gain has one value however it is
// scheduled or vectorised, and it is the GPU kernel's value too. Naive and lazy
// (tie_break low) return identical picks, and so do dense and on-the-fly storage.
#include <chrono>
#include <limits>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <string>

#include <sys/mman.h>

#include "../common/fixed_point.h"
#include "../common/rng.h"
#include "../facility_location/plan.h"
#include "../ops.h"
#include "distances_cpu.h"

namespace augcore {
namespace cpu {
namespace {

constexpr int64_t kGainBlock = 1024;
// One candidate's gain (or one commit) is split over threads only from this many blocks
// on: a parallel region per evaluation costs more than 16K points' work, and far more
// when the cores are oversubscribed (spinning OpenMP barriers).
constexpr int64_t kParallelBlocks = 16;

// max(0, s - m) in fixed point, summed over [t0, t1): exact, so lanes may add in any order.
// to_fixed(t) is bits(t + magic) - magic_bits; the bit patterns are summed modulo 2^64 and
// the magic taken off once (the true sum is below 2^62, so the wrapped one is exact).
inline int64_t gain_terms(const float* s, const float* m, int64_t t0, int64_t t1, const FixedPoint& fp) {
  uint64_t acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t t = t0; t < t1; ++t) {
    const float d = s[t] - m[t];
    acc += static_cast<uint64_t>(bits_from_double(static_cast<double>(d > 0.0f ? d : 0.0f) + fp.magic));
  }
  return static_cast<int64_t>(acc - static_cast<uint64_t>(t1 - t0) * static_cast<uint64_t>(fp.magic_bits));
}

// sum_t max(0, s[t] - m[t]) over a block. With `next` (the same block of the row most
// likely evaluated next) its cache lines are requested along the way: rows are read in
// an order the hardware cannot predict, and a lazy greedy waits on memory otherwise
// (about 1.3x on the greedy phase of a 5,000-point group).
int64_t block_gain(const float* s, const float* m, int64_t len, const FixedPoint& fp, const float* next) {
  constexpr int64_t kStep = 64, kLineFloats = 16;
  int64_t acc = 0, t0 = 0;
  if (next) {
    for (; t0 + kStep <= len; t0 += kStep) {
      for (int64_t line = 0; line < kStep; line += kLineFloats) __builtin_prefetch(next + t0 + line);
      acc += gain_terms(s, m, t0, t0 + kStep, fp);
    }
  }
  return acc + gain_terms(s, m, t0, len, fp);
}

// Squared distances -> similarities, in place; the one place both storage modes
// get similarities from. Element-wise with no reduction, so vector width does not
// change any value.
struct SimilarityTransform {
  int64_t kind;
  float neg_inv_scale;
  float dmax;
  void operator()(float* v, int64_t len) const {
    if (kind == kExp) {
#pragma omp simd
      for (int64_t t = 0; t < len; ++t) v[t] = exp_nonpositive(std::sqrt(finite_sqdist(v[t])) * neg_inv_scale);
    } else if (kind == kCraig) {
#pragma omp simd
      for (int64_t t = 0; t < len; ++t) v[t] = dmax - std::sqrt(finite_sqdist(v[t]));
    } else {
#pragma omp simd
      for (int64_t t = 0; t < len; ++t) v[t] = dmax - finite_sqdist(v[t]);
    }
  }
  // craig kinds subtract from the group's largest distance (or squared distance)
  bool needs_max() const { return kind != kExp; }
  void set_max_sqdist(float max_d2) { dmax = kind == kCraig ? std::sqrt(max_d2) : max_d2; }
  float bound() const { return kind == kExp ? 1.0f : dmax; }  // every similarity is <= bound
};

// Similarities stored candidate-major: row c holds s_ic for every point i.
struct DenseRows {
  const float* S;
  int64_t n;
  static constexpr bool stored = true;  // block() reads memory: another row's block can be prefetched
  static constexpr int64_t scratch_floats = 0;
  const float* block(int64_t c, int64_t b, float* /*scratch*/) const { return S + c * n + b * kGainBlock; }
};

// Similarities recomputed from the points for each block: O(n) memory per group.
struct OnTheFlyRows {
  const GroupGeometry* geo;
  SimilarityTransform transform;
  static constexpr bool stored = false;
  static constexpr int64_t scratch_floats = 2 * kGainBlock;
  const float* block(int64_t c, int64_t b, float* scratch) const {
    const int64_t j0 = b * kGainBlock, j1 = std::min(geo->size(), j0 + kGainBlock);
    geo->sqdist_tile(c, 1, j0, j1, scratch, scratch + kGainBlock);
    transform(scratch, j1 - j0);
    return scratch;
  }
};

struct GroupResult {
  std::vector<int64_t> picks;
  std::vector<int64_t> gains;  // fixed point
  std::vector<int64_t> assign;  // local position of each point's medoid
  double objective = 0.0;
  FixedPoint fp{};              // the unit of `gains`
};

template <typename Rows>
class GreedySolver {
 public:
  GreedySolver(const Rows& rows, int64_t n, bool parallel, int64_t tie_break, const FixedPoint& fp)
      : rows_(rows), n_(n), num_blocks_((n + kGainBlock - 1) / kGainBlock), parallel_(parallel && max_threads() > 1),
        tie_break_(tie_break), ties_high_(tie_break == kTiesHigh), fp_(fp),
        m_(n, 0.0f), assign_(n, -1), scratch_(std::max<int64_t>(Rows::scratch_floats, 1)) {}

  GroupResult naive(int64_t k) {
    GroupResult res;
    std::vector<int64_t> remaining(n_);
    for (int64_t i = 0; i < n_; ++i) remaining[i] = i;
    std::vector<int64_t> gains(n_);
    for (int64_t step = 0; step < k; ++step) {
      const int64_t r = static_cast<int64_t>(remaining.size());
      evaluate(remaining.data(), r, gains.data());
      int64_t best_q = 0;
      for (int64_t q = 1; q < r; ++q)
        if (better(gains[q], remaining[q], gains[best_q], remaining[best_q])) best_q = q;
      take(res, remaining, best_q, gains[best_q]);
    }
    return finish(std::move(res));
  }

  GroupResult lazy(int64_t k) {
    if (tie_break_ == kTiesHigh) return lazy_submodlib(k);
    if (tie_break_ == kTiesApricot) return lazy_apricot(k);
    return lazy_minoux(k);
  }

  // Minoux's lazy greedy with freshness stamps: a bound recomputed at this step that
  // tops the heap is the step's maximum, ties to the smaller index, so the picks are
  // exactly naive's.
  GroupResult lazy_minoux(int64_t k) {
    GroupResult res;
    struct Entry {
      int64_t gain;
      int64_t idx;
      bool operator<(const Entry& o) const { return gain < o.gain || (gain == o.gain && idx > o.idx); }
    };
    const std::vector<int64_t> gains = initial_gains();
    std::vector<Entry> entries(n_);
    for (int64_t i = 0; i < n_; ++i) entries[i] = {gains[i], i};
    std::priority_queue<Entry> heap(std::less<Entry>(), std::move(entries));
    std::vector<int64_t> fresh_at(n_, 0);  // step at which the stored bound was computed exactly
    for (int64_t step = 0; step < k; ++step) {
      while (true) {
        Entry top = heap.top();
        heap.pop();
        if (fresh_at[top.idx] == step) {
          res.picks.push_back(top.idx);
          res.gains.push_back(top.gain);
          commit(top.idx);
          break;
        }
        fresh_at[top.idx] = step;
        heap.push({gain_of(top.idx, heap.empty() ? -1 : heap.top().idx), top.idx});
      }
    }
    return finish(std::move(res));
  }

  // submodlib's LazyGreedyOptimizer, step for step: a max-heap of (bound, index) pairs
  // (equal bounds: the larger index on top); the top is popped and re-evaluated, and
  // taken when its fresh gain is >= the next top's bound (the bound alone, whatever
  // that element's index), else pushed back with its fresh gain. Re-evaluating an
  // element already re-evaluated at this step returns the same value, so it is reused.
  GroupResult lazy_submodlib(int64_t k) {
    GroupResult res;
    const std::vector<int64_t> gains = initial_gains();
    using Entry = std::pair<int64_t, int64_t>;  // (bound, index): std::less puts equal bounds' larger index on top
    std::vector<Entry> entries(n_);
    for (int64_t i = 0; i < n_; ++i) entries[i] = {gains[i], i};
    std::priority_queue<Entry> heap(std::less<Entry>(), std::move(entries));
    std::vector<int64_t> fresh_at(n_, 0);  // the initial gains are fresh at step 0
    for (int64_t step = 0; step < k; ++step) {
      while (true) {
        const auto [bound, c] = heap.top();
        heap.pop();
        const int64_t gain = fresh_at[c] == step ? bound : gain_of(c, heap.empty() ? -1 : heap.top().second);
        fresh_at[c] = step;
        if (heap.empty() || gain >= heap.top().first) {
          res.picks.push_back(c);
          res.gains.push_back(gain);
          commit(c);
          break;
        }
        heap.push({gain, c});
      }
    }
    return finish(std::move(res));
  }

  // apricot's LazyGreedy (optimizers.py), step for step: a min-heap on (-bound, insertion
  // counter), so equal bounds pop in insertion order. Each popped element is
  // re-evaluated and pushed back with a new counter; the first with the step's largest
  // fresh gain is the best, and the step ends when the best pops again. A second zero
  // gain ends the step with that element, as apricot's does (which also leaves it in its
  // queue; here a picked element is never re-queued, so no pick repeats).
  GroupResult lazy_apricot(int64_t k) {
    GroupResult res;
    struct Entry {
      int64_t bound, counter, idx;
      bool operator<(const Entry& o) const { return bound < o.bound || (bound == o.bound && counter > o.counter); }
    };
    const std::vector<int64_t> gains = initial_gains();
    std::vector<Entry> entries(n_);
    for (int64_t i = 0; i < n_; ++i) entries[i] = {gains[i], i, i};
    std::priority_queue<Entry> heap(std::less<Entry>(), std::move(entries));
    int64_t counter = n_;
    std::vector<int64_t> live(n_);  // counter of each element's current entry; -1 once picked
    for (int64_t i = 0; i < n_; ++i) live[i] = i;
    std::vector<int64_t> fresh_at(n_, 0);  // the initial gains are fresh at step 0
    for (int64_t step = 0; step < k; ++step) {
      int64_t best = -1, best_gain = 0;
      while (!heap.empty()) {
        const Entry top = heap.top();
        heap.pop();
        if (live[top.idx] != top.counter) continue;  // replaced or picked
        if (top.idx == best) break;
        // re-evaluating within a step returns the stored value: m has not changed since
        const int64_t gain =
            fresh_at[top.idx] == step ? top.bound : gain_of(top.idx, heap.empty() ? -1 : heap.top().idx);
        fresh_at[top.idx] = step;
        live[top.idx] = counter;
        heap.push({gain, counter++, top.idx});
        if (best < 0 || gain > best_gain) {
          best = top.idx;
          best_gain = gain;
        } else if (gain == best_gain && gain == 0) {
          best = top.idx;
          break;
        }
      }
      live[best] = -1;
      res.picks.push_back(best);
      res.gains.push_back(best_gain);
      commit(best);
    }
    return finish(std::move(res));
  }

  // Stochastic greedy with lazy bounds inside each sample: the sampled candidates
  // are evaluated in decreasing order of their (stale) upper bounds and the scan
  // stops once no unevaluated one can win, which returns exactly the sample's best.
  GroupResult stochastic(int64_t k, double eps, uint64_t seed, uint64_t group) {
    GroupResult res;
    const int64_t sample_size = stochastic_sample_size(n_, k, eps);
    std::vector<int64_t> remaining(n_);
    for (int64_t i = 0; i < n_; ++i) remaining[i] = i;
    std::vector<int64_t> bound(n_, std::numeric_limits<int64_t>::max());  // not evaluated yet
    const int64_t chunk = parallel_ ? max_threads() : 1;
    std::vector<int64_t> order, batch;
    std::vector<int64_t> batch_gains(chunk);
    for (int64_t step = 0; step < k; ++step) {
      const int64_t r = static_cast<int64_t>(remaining.size());
      const int64_t s = std::min(r, sample_size);
      for (int64_t j = 0; j < s; ++j) {
        const int64_t t = j + static_cast<int64_t>(uniform_below(counter_hash(seed, group, step, j), r - j));
        std::swap(remaining[j], remaining[t]);
      }
      order.resize(s);
      for (int64_t q = 0; q < s; ++q) order[q] = q;
      std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return better(bound[remaining[a]], remaining[a], bound[remaining[b]], remaining[b]);
      });
      int64_t best_q = -1;
      int64_t best_gain = -1;
      for (int64_t pos = 0; pos < s;) {
        const int64_t head = remaining[order[pos]];
        if (best_q >= 0 && !better(bound[head], head, best_gain, remaining[best_q])) break;
        batch.clear();
        for (; pos < s && static_cast<int64_t>(batch.size()) < chunk; ++pos) batch.push_back(order[pos]);
        std::vector<int64_t> cands(batch.size());
        for (size_t u = 0; u < batch.size(); ++u) cands[u] = remaining[batch[u]];
        evaluate(cands.data(), static_cast<int64_t>(cands.size()), batch_gains.data());
        for (size_t u = 0; u < batch.size(); ++u) {
          bound[cands[u]] = batch_gains[u];
          if (best_q < 0 || better(batch_gains[u], cands[u], best_gain, remaining[best_q])) {
            best_q = batch[u];
            best_gain = batch_gains[u];
          }
        }
      }
      take(res, remaining, best_q, best_gain);
    }
    return finish(std::move(res));
  }

 private:
  // Larger gain wins; exact ties go to the smaller index, or the larger with ties_high_.
  bool better(int64_t g, int64_t i, int64_t g_other, int64_t i_other) const {
    return g > g_other || (g == g_other && (ties_high_ ? i > i_other : i < i_other));
  }

  // c's gain; `next`, when known, is the candidate likely evaluated after it (prefetched).
  int64_t gain_of(int64_t c, int64_t next = -1) {
    if (!parallel_ || num_blocks_ < kParallelBlocks) return gain_serial(c, scratch_.data(), next);
    int64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
      std::vector<float> scratch(std::max<int64_t>(Rows::scratch_floats, 1));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < num_blocks_; ++b) total += block_gain_of(c, b, scratch.data());
    }
    return total;
  }

  int64_t gain_serial(int64_t c, float* scratch, int64_t next = -1) const {
    int64_t total = 0;
    for (int64_t b = 0; b < num_blocks_; ++b) total += block_gain_of(c, b, scratch, next);
    return total;
  }

  int64_t block_gain_of(int64_t c, int64_t b, float* scratch, int64_t next = -1) const {
    const int64_t len = std::min(kGainBlock, n_ - b * kGainBlock);
    const float* ahead = nullptr;
    if constexpr (Rows::stored) ahead = next >= 0 ? rows_.block(next, b, nullptr) : nullptr;
    return block_gain(rows_.block(c, b, scratch), m_.data() + b * kGainBlock, len, fp_, ahead);
  }

  void evaluate(const int64_t* cands, int64_t count, int64_t* out) {
    if (parallel_ && count >= max_threads()) {
#pragma omp parallel
      {
        std::vector<float> scratch(std::max<int64_t>(Rows::scratch_floats, 1));
#pragma omp for schedule(dynamic, 16)
        for (int64_t u = 0; u < count; ++u) out[u] = gain_serial(cands[u], scratch.data(), next_of(cands, count, u));
      }
      return;
    }
    for (int64_t u = 0; u < count; ++u) out[u] = gain_of(cands[u], next_of(cands, count, u));
  }

  static int64_t next_of(const int64_t* cands, int64_t count, int64_t u) { return u + 1 < count ? cands[u + 1] : -1; }

  // Every candidate's gain on the empty set: the lazy greedies' first bounds.
  std::vector<int64_t> initial_gains() {
    std::vector<int64_t> all(n_), gains(n_);
    for (int64_t i = 0; i < n_; ++i) all[i] = i;
    evaluate(all.data(), n_, gains.data());
    return gains;
  }

  // m_i = max(m_i, s_ic); a point moves to c only if c is strictly more similar
  // (ties stay with the earlier pick); the first pick takes every point.
  void commit(int64_t c) {
#pragma omp parallel if (parallel_ && num_blocks_ >= kParallelBlocks)
    {
      std::vector<float> scratch(std::max<int64_t>(Rows::scratch_floats, 1));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < num_blocks_; ++b) {
        const int64_t i0 = b * kGainBlock, len = std::min(kGainBlock, n_ - i0);
        const float* s = rows_.block(c, b, scratch.data());
        for (int64_t t = 0; t < len; ++t) {
          const int64_t i = i0 + t;
          if (assign_[i] < 0 || s[t] > m_[i]) {
            assign_[i] = c;
            m_[i] = std::max(m_[i], s[t]);
          }
        }
      }
    }
  }

  void take(GroupResult& res, std::vector<int64_t>& remaining, int64_t q, int64_t gain) {
    const int64_t c = remaining[q];
    res.picks.push_back(c);
    res.gains.push_back(gain);
    commit(c);
    remaining[q] = remaining.back();
    remaining.pop_back();
  }

  GroupResult finish(GroupResult res) {
    int64_t objective = 0;
    for (int64_t i = 0; i < n_; ++i) objective += to_fixed(m_[i], fp_);
    res.objective = from_fixed(objective, fp_);
    res.fp = fp_;
    res.assign = std::move(assign_);
    return res;
  }

  const Rows& rows_;
  int64_t n_, num_blocks_;
  bool parallel_;
  int64_t tie_break_;
  bool ties_high_;
  FixedPoint fp_;
  std::vector<float> m_;
  std::vector<int64_t> assign_;
  std::vector<float> scratch_;
};

template <typename Rows>
GroupResult run_greedy(const Rows& rows, int64_t n, int64_t k, int64_t method, double eps, uint64_t seed,
                       uint64_t group, bool parallel, int64_t tie_break, float bound) {
  GreedySolver<Rows> solver(rows, n, parallel, tie_break, fixed_point_for(n, bound));
  if (method == kNaive) return solver.naive(k);
  if (method == kLazy) return solver.lazy(k);
  return solver.stochastic(k, eps, seed, group);
}

// A worker's dense similarity storage, reused across the groups it solves: first
// touches of fresh pages (the kernel zeroing them) otherwise cost as much as filling
// them. Huge pages, where the OS grants them, cut the page faults further.
class DenseBuffer {
 public:
  DenseBuffer() = default;
  DenseBuffer(const DenseBuffer&) = delete;
  DenseBuffer& operator=(const DenseBuffer&) = delete;
  float* get(int64_t count) {
    if (count > capacity_) {
      release();
      const size_t bytes = static_cast<size_t>(count) * sizeof(float);
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
      madvise(p, bytes, MADV_HUGEPAGE);
#endif
      data_ = static_cast<float*>(p);
      capacity_ = count;
    }
    return data_;
  }
  ~DenseBuffer() { release(); }

 private:
  void release() {
    if (data_) munmap(data_, static_cast<size_t>(capacity_) * sizeof(float));
    data_ = nullptr;
    capacity_ = 0;
  }
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

float max_sqdist_on_the_fly(const GroupGeometry& geo, bool parallel) {
  const int64_t n = geo.size();
  float best = 0.0f;
#pragma omp parallel if (parallel) reduction(max : best)
  {
    std::vector<float> tile(static_cast<size_t>(kRowBlock * kGainBlock)), scratch(geo.scratch_size(kRowBlock, kGainBlock));
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int64_t i0 = 0; i0 < n; i0 += kRowBlock)
      for (int64_t j0 = 0; j0 < n; j0 += kGainBlock) {
        const int64_t rows = std::min(kRowBlock, n - i0), j1 = std::min(n, j0 + kGainBlock);
        geo.sqdist_tile(i0, rows, j0, j1, tile.data(), scratch.data());
        for (int64_t t = 0; t < rows * (j1 - j0); ++t) best = std::max(best, finite_sqdist(tile[t]));
      }
  }
  return best;
}

// The craig kinds' dense block: squared distances with their maximum taken as the
// tiles are written (one running maximum per thread), then one transform pass.
void fill_with_max_then_transform(const GroupGeometry& geo, float* S, SimilarityTransform& transform,
                                  bool parallel) {
  const int64_t n = geo.size();
  std::vector<float> thread_max(max_threads(), 0.0f);
  fill_symmetric_block(
      geo, S,
      [&](float* v, int64_t len) {
        float best = thread_max[thread_num()];
#pragma omp simd reduction(max : best)
        for (int64_t t = 0; t < len; ++t) best = std::max(best, finite_sqdist(v[t]));
        thread_max[thread_num()] = best;
      },
      parallel);
  transform.set_max_sqdist(*std::max_element(thread_max.begin(), thread_max.end()));
#pragma omp parallel for schedule(static) if (parallel && n >= kRowBlock)
  for (int64_t i = 0; i < n; ++i) transform(S + i * n, n);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace
}  // namespace cpu

FacilityLocationOut facility_location_cpu(const at::Tensor& x, const std::optional<at::Tensor>& embeddings,
                                          const std::optional<at::Tensor>& similarity, const at::Tensor& indptr,
                                          const at::Tensor& budgets, int64_t similarity_kind, double scale,
                                          double bias, int64_t method, double eps, int64_t seed, int64_t mode,
                                          int64_t memory_limit, int64_t tie_break) {
  using namespace cpu;
  const FacilityLocationPlan plan =
      plan_facility_location(x, embeddings, similarity, indptr, budgets, similarity_kind, scale, bias, method, eps,
                             mode, memory_limit, tie_break);
  const int64_t G = plan.G, N = plan.N, D = plan.D, H = plan.H, active = plan.active;
  const int64_t* p = plan.p;
  const int64_t* kb = plan.k;
  const std::vector<int64_t>& sel_ptr = plan.sel_ptr;
  const std::vector<int64_t>& sim_ptr = plan.sim_ptr;
  const bool precomputed = similarity_kind == kPrecomputed;
  const float* hs = embeddings ? embeddings->data_ptr<float>() : nullptr;
  const float* sim = precomputed ? similarity->data_ptr<float>() : nullptr;

  auto selected = at::empty({sel_ptr[G]}, at::kLong);
  auto gains = at::empty({sel_ptr[G]}, at::kDouble);
  auto gamma = at::zeros({sel_ptr[G]}, at::kLong);
  auto assignment = at::full({N}, -1, at::kLong);
  auto objective = at::zeros({G}, at::kDouble);
  int64_t* sel_out = selected.data_ptr<int64_t>();
  double* gain_out = gains.data_ptr<double>();
  int64_t* gamma_out = gamma.data_ptr<int64_t>();
  int64_t* assign_out = assignment.data_ptr<int64_t>();
  double* obj_out = objective.data_ptr<double>();
  const float* xs = x.data_ptr<float>();

  const int threads = max_threads();
  const bool across_groups = active >= threads && threads > 1;
  const int64_t concurrent = across_groups ? std::min<int64_t>(threads, active) : 1;
  std::vector<int64_t> schedule;
  for (int64_t g = 0; g < G; ++g)
    if (kb[g] > 0) schedule.push_back(g);
  std::stable_sort(schedule.begin(), schedule.end(),
                   [&](int64_t a, int64_t b) { return p[a + 1] - p[a] > p[b + 1] - p[b]; });
  // precomputed blocks: finite and non-negative (the fixed point needs a bound), checked here
  // because other frameworks call this op directly
  std::vector<float> block_max(precomputed ? G : 0, 0.0f);
  for (int64_t g = 0; g < static_cast<int64_t>(block_max.size()); ++g) {
    const float* block = sim + sim_ptr[g];
    float mx = 0.0f;
    bool ok = true;
    for (int64_t t = 0; t < sim_ptr[g + 1] - sim_ptr[g]; ++t) {
      ok &= block[t] >= 0.0f && block[t] <= std::numeric_limits<float>::max();
      mx = std::max(mx, block[t]);
    }
    TORCH_CHECK_VALUE(ok, "facility_location: similarity must be finite and non-negative; group ", g,
                " has a negative, infinite or NaN entry");
    block_max[g] = mx;
  }
  std::vector<double> sim_seconds(G, 0.0), greedy_seconds(G, 0.0);
  std::mutex error_mutex;
  std::string error;
  std::vector<DenseBuffer> buffers(across_groups ? threads : 1);

  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 1) if (across_groups)
  for (size_t u = 0; u < schedule.size(); ++u) {
    const int64_t g = schedule[u];
    const int64_t n = p[g + 1] - p[g], k = kb[g], base = p[g];
    try {
      const bool inner_parallel = !across_groups;
      const auto t0 = std::chrono::steady_clock::now();
      GroupResult res;
      if (precomputed) {
        res = run_greedy(DenseRows{sim + sim_ptr[g], n}, n, k, method, eps, seed, g, inner_parallel, tie_break,
                         block_max[g]);
      } else {
        GroupGeometry geo(xs + base * D, n, D, hs ? hs + base * H : nullptr, H, static_cast<float>(bias),
                          similarity_kind == kCraigSquared);
        SimilarityTransform transform{similarity_kind, static_cast<float>(-1.0 / scale), 0.0f};
        const double block_bytes = 4.0 * n * n * concurrent;
        const bool dense = mode == kDense || (mode == kAuto && block_bytes <= static_cast<double>(memory_limit));
        if (dense) {
          float* S = buffers[across_groups ? thread_num() : 0].get(n * n);
          if (transform.needs_max()) {
            fill_with_max_then_transform(geo, S, transform, inner_parallel);
          } else {
            fill_symmetric_block(geo, S, transform, inner_parallel);
          }
          sim_seconds[g] = seconds_since(t0);
          const auto t1 = std::chrono::steady_clock::now();
          res = run_greedy(DenseRows{S, n}, n, k, method, eps, seed, g, inner_parallel, tie_break,
                           transform.bound());
          greedy_seconds[g] = seconds_since(t1);
        } else {
          if (transform.needs_max()) transform.set_max_sqdist(max_sqdist_on_the_fly(geo, inner_parallel));
          sim_seconds[g] = seconds_since(t0);
          const auto t1 = std::chrono::steady_clock::now();
          res = run_greedy(OnTheFlyRows{&geo, transform}, n, k, method, eps, seed, g, inner_parallel, tie_break,
                           transform.bound());
          greedy_seconds[g] = seconds_since(t1);
        }
      }
      if (precomputed) greedy_seconds[g] = seconds_since(t0);
      std::vector<int64_t> rank_of(n, -1);
      for (int64_t r = 0; r < k; ++r) {
        rank_of[res.picks[r]] = r;
        sel_out[sel_ptr[g] + r] = base + res.picks[r];
        gain_out[sel_ptr[g] + r] = from_fixed(res.gains[r], res.fp);
      }
      for (int64_t i = 0; i < n; ++i) {
        assign_out[base + i] = base + res.assign[i];
        ++gamma_out[sel_ptr[g] + rank_of[res.assign[i]]];
      }
      obj_out[g] = res.objective;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(error_mutex);
      error = std::string("group ") + std::to_string(g) + " (" + std::to_string(n) + " points): " + e.what();
    }
  }
  TORCH_CHECK(error.empty(), "facility_location failed for ", error);

  // Wall-clock seconds. Groups solved one after another (each phase parallel inside)
  // add up to wall-clock time as measured; groups solved concurrently overlap, so the
  // loop's wall-clock time is split between the phases in proportion to thread time.
  const double wall = seconds_since(start);
  double sim_total = 0.0, greedy_total = 0.0;
  for (int64_t g = 0; g < G; ++g) {
    sim_total += sim_seconds[g];
    greedy_total += greedy_seconds[g];
  }
  if (across_groups && sim_total + greedy_total > 0.0) {
    const double per_thread_second = wall / (sim_total + greedy_total);
    sim_total *= per_thread_second;
    greedy_total *= per_thread_second;
  }
  auto timings = at::tensor({sim_total, greedy_total}, at::kDouble);
  return {selected, gains, gamma, assignment, objective, timings};
}

}  // namespace augcore
