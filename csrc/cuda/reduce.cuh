// Reductions shared by the fastot CUDA kernels: warp shuffles within a warp, shared
// memory across the warps of a block.
//
// Every kernel runs blocks of kThreads threads (row_plan.h), `group` consecutive threads per task.
#pragma once

#include <cstdint>

#include "row_plan.h"

namespace fastot::cuda {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = kThreads / kWarp;

// Sum over each aligned group of `width` lanes (a power of two <= 32); every lane of the
// group receives its group's sum. All 32 lanes of the warp must call it.
template <typename T>
__device__ __forceinline__ T warp_sum(T v, int width = kWarp) {
  for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset, width);
  return v;
}

// Sum over each aligned group of `group` consecutive threads of the block (a power of two
// in [1, kThreads], the same for the whole block). The first thread of each group gets the
// group's sum (every thread of the group when group <= 32). Every thread of the block must
// call it: groups wider than a warp synchronise through `smem`, kWarpsPerBlock values,
// which can be reused as soon as the call returns.
template <typename T>
__device__ __forceinline__ T group_sum(T v, int group, T* smem) {
  if (group <= kWarp) return warp_sum(v, group);
  v = warp_sum(v);
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (static_cast<int>(threadIdx.x) % group == 0) {
    T s = smem[warp];
    for (int w = 1; w < group / kWarp; ++w) s += smem[warp + w];
    v = s;
  }
  __syncthreads();
  return v;
}

// Sum over the whole block (blockDim.x == kThreads); thread 0 gets the result.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* smem) {
  return group_sum(v, kThreads, smem);
}

// sum_i partial[i * stride + offset] for i in [0, count), in double, over one block;
// thread 0 gets the result. For the second pass over per-block or per-chunk partials.
__device__ __forceinline__ double sum_partials(const double* __restrict__ partial, int64_t count,
                                               int64_t stride, int64_t offset, double* smem) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) s += partial[i * stride + offset];
  return block_sum(s, smem);
}

// Per-thread accumulation of a long run of terms: up to kFlushPacks packs are summed in
// the accumulation type (float for half / bfloat16 / float), then added into a double,
// so no float sum covers more than 16 packs (128 elements at most) of a row, or of
// each of the Z rows for the weak costs.
constexpr int kFlushPacks = 16;

}  // namespace fastot::cuda
