// Parallel work over [B, d] rows split into chunks of the feature dim, so that a
// small batch of large rows (B = 16, d = 3 * 256 * 256) still uses every thread.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace fastot::cpu {

// Chunk length used for feature-dim loops that keep per-chunk scratch on the stack.
constexpr int64_t kTile = 1024;

struct RowChunks {
  int64_t B, d, per_row, len;

  RowChunks(int64_t B_, int64_t d_) : B(B_), d(d_) {
    // Enough tasks for load balance, but chunks of at least 16K elements so each task
    // streams a useful amount of memory.
    const int64_t want = 4 * at::get_num_threads();
    const int64_t max_per_row = std::max<int64_t>(1, d / (16 * kTile));
    per_row = B >= want ? 1 : std::min(max_per_row, (want + B - 1) / std::max<int64_t>(B, 1));
    per_row = std::max<int64_t>(per_row, 1);
    len = (d + per_row - 1) / per_row;
  }
  int64_t tasks() const { return B * per_row; }

  // fn(b, task, j0, j1) for every chunk [j0, j1) of every row b, in parallel. Tasks are grouped
  // to at least at::internal::GRAIN_SIZE elements: a toy batch (B = 256, d = 2) runs inline
  // instead of waking the thread pool, which costs more than the work and stalls whenever
  // another process holds a core.
  template <typename F>
  void run(const F& fn) const {
    const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(len, 1));
    at::parallel_for(0, tasks(), grain, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / per_row;
        const int64_t j0 = (t % per_row) * len;
        const int64_t j1 = std::min(d, j0 + len);
        if (j0 < j1) fn(b, t, j0, j1);
      }
    });
  }

  // K double accumulators per row: fn(b, j0, j1, acc) adds its chunk's share into acc[0..K).
  // Returns [B * K] sums, added in a fixed order so results do not depend on threading.
  template <typename F>
  std::vector<double> reduce(int64_t K, const F& fn) const {
    std::vector<double> partial(static_cast<size_t>(tasks() * K), 0.0);
    run([&](int64_t b, int64_t t, int64_t j0, int64_t j1) { fn(b, j0, j1, partial.data() + t * K); });
    std::vector<double> out(static_cast<size_t>(B * K), 0.0);
    for (int64_t t = 0; t < tasks(); ++t)
      for (int64_t k = 0; k < K; ++k) out[(t / per_row) * K + k] += partial[t * K + k];
    return out;
  }
};

}  // namespace fastot::cpu
