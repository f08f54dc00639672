// How the fastot CUDA kernels are launched: the row plan of this device (row_plan.h), the grids,
// partial-sum buffers and the launch itself, on the current stream with its error check.
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
#include "row_plan.h"

namespace fastot::cuda {

inline int num_sms() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

// The plan for this device: see row_plan.h.
inline RowPlan plan_rows(int64_t rows, int64_t d, int vec, int64_t occupancy_rows) {
  return plan_rows(rows, d, vec, occupancy_rows, num_sms());
}

__device__ __forceinline__ RowTask row_task(const RowPlan& p, int64_t n_tasks, int64_t sub_tasks = 1) {
  return row_task_of(p, n_tasks, sub_tasks, blockIdx.x, static_cast<int>(threadIdx.x));
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
