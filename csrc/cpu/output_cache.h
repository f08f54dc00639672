// Output buffers for the CPU kernels' large results (gradients of images, mostly).
//
// A fresh multi-megabyte allocation page-faults on every first touch: at [64, 3, 256, 256]
// that costs more than the kernel itself, every training step. Buffers of 1 MiB and more
// are therefore backed by transparent huge pages and, once their tensor is freed, kept in
// a small cache (bounded by FASTOT_CPU_CACHE_MB, default 1024; 0 turns it off) for the next
// output of the same size. A buffer is reused only after the tensor that owned it is gone,
// so results never alias.
#pragma once

#include <ATen/ATen.h>

namespace fastot::cpu {

// at::empty(sizes, options) for CPU, served from the cache when large.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options);

inline at::Tensor empty_output_like(const at::Tensor& t) {
  return empty_output(t.sizes(), t.options());
}

}  // namespace fastot::cpu
