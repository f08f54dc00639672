// The launch geometry of the fastot CUDA kernels: [rows, d] work split into tasks of one chunk
// of one row (RowPlan), and the task a thread of a block serves (RowTask). Plain integer math
// with no CUDA dependency, so a host compiler builds it too: tests/cuda_plan/ checks on the CPU
// that every plan covers every element exactly once.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define FASTOT_HOST_DEVICE __host__ __device__
#else
#define FASTOT_HOST_DEVICE
#endif

namespace fastot::cuda {

// Every kernel runs blocks of kThreads threads. A block serves kThreads / group tasks with
// `group` consecutive threads each, so short rows do not leave most of a block idle and long
// rows get a whole block.
constexpr int kThreads = 256;

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Chunks are multiples of the vector width, so vector loads stay aligned, and a row is split
// only when there are too few rows to fill the GPU (B = 16 rows of d = 3 * 256 * 256 become
// hundreds of blocks).
struct RowPlan {
  int64_t rows = 0;
  int64_t d = 0;
  int64_t chunks = 1;     // chunks per row
  int64_t chunk_len = 0;  // elements per chunk (the last one of a row may be shorter)
  int group = 1;          // threads per task: a power of two in [1, kThreads]

  FASTOT_HOST_DEVICE int64_t tasks() const { return rows * chunks; }
  FASTOT_HOST_DEVICE int64_t tasks_per_block() const { return kThreads / group; }
  // Elements between one thread's consecutive packs of V elements.
  FASTOT_HOST_DEVICE int64_t stride(int v) const { return static_cast<int64_t>(group) * v; }
  int64_t blocks(int64_t n_tasks) const { return std::max<int64_t>(1, ceil_div(n_tasks, tasks_per_block())); }
};

// Packs (vector loads) a chunk holds at least, and packs per thread the group size aims at.
constexpr int64_t kMinChunkPacks = 1024;
constexpr int64_t kPacksPerThread = 4;

// `occupancy_rows` counts the independent rows of work (B, or B * K when every row holds K
// separate reductions) when deciding whether rows must be split across the `sms` multiprocessors.
inline RowPlan plan_rows(int64_t rows, int64_t d, int vec, int64_t occupancy_rows, int sms) {
  RowPlan p;
  p.rows = rows;
  p.d = d;
  const int64_t packs = ceil_div(d, vec);
  if (packs == 0) return p;
  const int64_t want_tasks = 8 * static_cast<int64_t>(sms);
  int64_t chunks = 1;
  if (packs >= 2 * kMinChunkPacks && occupancy_rows < want_tasks)
    chunks = std::min(packs / kMinChunkPacks, ceil_div(want_tasks, std::max<int64_t>(occupancy_rows, 1)));
  const int64_t chunk_packs = ceil_div(packs, chunks);
  p.chunks = ceil_div(packs, chunk_packs);
  p.chunk_len = chunk_packs * vec;
  while (p.group < kThreads && p.group * kPacksPerThread < chunk_packs) p.group *= 2;
  return p;
}

// One task of a RowPlan as a thread sees it. Threads of a block's last, partly filled
// groups get an inactive task with an empty range: they still take part in group_sum.
struct RowTask {
  int64_t index;  // task index: row * chunks + chunk (times sub_tasks, plus the sub-task)
  int64_t row;
  int64_t chunk;
  int64_t j0, j1;  // element range [j0, j1) of the row
  int lane;        // thread within the group, in [0, group)
  bool active;

  // Column of this thread's first pack of V elements.
  FASTOT_HOST_DEVICE int64_t begin(int v) const { return j0 + static_cast<int64_t>(lane) * v; }
};

// The task of thread `thread` of block `block`. With `sub_tasks` > 1 every (row, chunk) is served
// by that many consecutive tasks (e.g. the K distances of a row), which share its range.
FASTOT_HOST_DEVICE inline RowTask row_task_of(const RowPlan& p, int64_t n_tasks, int64_t sub_tasks, int64_t block,
                                              int thread) {
  RowTask t;
  t.index = block * p.tasks_per_block() + thread / p.group;
  t.lane = thread % p.group;
  t.active = t.index < n_tasks;
  const int64_t rc = t.active ? t.index / sub_tasks : 0;
  t.row = rc / p.chunks;
  t.chunk = rc % p.chunks;
  t.j0 = t.chunk * p.chunk_len;
  t.j1 = t.active ? std::min(p.d, t.j0 + p.chunk_len) : t.j0;
  return t;
}

}  // namespace fastot::cuda
