// How the fastot CUDA kernels are launched: the split of [rows, d] work into tasks of one chunk
// of one row (RowPlan), the grids, partial-sum buffers and the launch itself, on the current
// stream with its error check.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "common.cuh"

namespace fastot::cuda {

inline int num_sms() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

// [rows, d] work split into tasks of one chunk of one row. Chunks are multiples of the
// vector width, so vector loads stay aligned, and a row is split only when there are too
// few rows to fill the GPU (B = 16 rows of d = 3 * 256 * 256 become hundreds of blocks).
struct RowPlan {
  int64_t rows = 0;
  int64_t d = 0;
  int64_t chunks = 1;     // chunks per row
  int64_t chunk_len = 0;  // elements per chunk (the last one of a row may be shorter)
  int group = 1;          // threads per task: a power of two in [1, kThreads]

  __host__ __device__ int64_t tasks() const { return rows * chunks; }
  __host__ __device__ int64_t tasks_per_block() const { return kThreads / group; }
  // Elements between one thread's consecutive packs of V elements.
  __host__ __device__ int64_t stride(int v) const { return static_cast<int64_t>(group) * v; }
  int64_t blocks(int64_t n_tasks) const { return std::max<int64_t>(1, ceil_div(n_tasks, tasks_per_block())); }
};

// Packs (vector loads) a chunk holds at least, and packs per thread the group size aims at.
constexpr int64_t kMinChunkPacks = 1024;
constexpr int64_t kPacksPerThread = 4;

// `occupancy_rows` counts the independent rows of work (B, or B * K when every row holds K
// separate reductions) when deciding whether rows must be split.
inline RowPlan plan_rows(int64_t rows, int64_t d, int vec, int64_t occupancy_rows) {
  RowPlan p;
  p.rows = rows;
  p.d = d;
  const int64_t packs = ceil_div(d, vec);
  if (packs == 0) return p;
  const int64_t want_tasks = 8 * static_cast<int64_t>(num_sms());
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
  int64_t index;  // task index: row * chunks + chunk
  int64_t row;
  int64_t chunk;
  int64_t j0, j1;  // element range [j0, j1) of the row
  int lane;        // thread within the group, in [0, group)
  bool active;

  // Column of this thread's first pack of V elements.
  __device__ int64_t begin(int v) const { return j0 + static_cast<int64_t>(lane) * v; }
};

__device__ __forceinline__ RowTask row_task(const RowPlan& p, int64_t n_tasks, int64_t sub_tasks = 1) {
  RowTask t;
  t.index = static_cast<int64_t>(blockIdx.x) * p.tasks_per_block() + threadIdx.x / p.group;
  t.lane = static_cast<int>(threadIdx.x) % p.group;
  t.active = t.index < n_tasks;
  const int64_t rc = t.active ? t.index / sub_tasks : 0;
  t.row = rc / p.chunks;
  t.chunk = rc % p.chunks;
  t.j0 = t.chunk * p.chunk_len;
  t.j1 = t.active ? std::min(p.d, t.j0 + p.chunk_len) : t.j0;
  return t;
}

// A one-dimensional grid of `blocks` blocks.
inline dim3 grid(int64_t blocks) {
  TORCH_CHECK(blocks > 0 && blocks <= INT32_MAX, "fastot: CUDA grid of ", blocks, " blocks is out of range");
  return dim3(static_cast<unsigned int>(blocks));
}

// Blocks for a grid-stride loop over n packs: enough to fill the GPU, no more.
inline int64_t flat_blocks(int64_t n_packs) {
  const int64_t cap = 8 * static_cast<int64_t>(num_sms());
  return std::max<int64_t>(1, std::min(cap, ceil_div(n_packs, kThreads * kPacksPerThread)));
}

// kernel<<<blocks, kThreads>>>(args...) on the current stream (the caller's device guard
// selects the device), then the launch check: every kernel of fastot starts here.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t blocks, Args&&... args) {
  kernel<<<grid(blocks), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(std::forward<Args>(args)...);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// n double partial sums for a second pass, allocated only when `needed` (ptr is null otherwise,
// and the first pass writes its results directly).
struct Partials {
  at::Tensor buffer;
  double* ptr = nullptr;

  Partials(bool needed, int64_t n, const at::TensorOptions& options) {
    if (!needed) return;
    buffer = at::empty({n}, options.dtype(at::kDouble));
    ptr = buffer.mutable_data_ptr<double>();
  }
};

}  // namespace fastot::cuda
