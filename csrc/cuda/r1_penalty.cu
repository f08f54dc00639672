#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "launch.cuh"

namespace fastot::cuda {
namespace {

// The penalty sums over every row, so the [B, d] gradient is one flat run of B * d
// elements: per-block sums of squares, written to out directly when one block suffices.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    r1_penalty_kernel(const scalar_t* __restrict__ g, int64_t n, double weight, int64_t B,
                      scalar_t* __restrict__ out, double* __restrict__ partial) {
  using acc = acc_t<scalar_t>;
  __shared__ double smem[kWarpsPerBlock];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t packs = n / V;
  double total = 0.0;
  for (int64_t p = first; p < packs;) {
    acc s = 0;
    for (int r = 0; r < kFlushPacks && p < packs; ++r, p += stride) {
      acc a[V];
      load_acc<V>(a, g + p * V);
#pragma unroll
      for (int i = 0; i < V; ++i) s += a[i] * a[i];
    }
    total += static_cast<double>(s);
  }
  const int64_t i = packs * V + first;
  if (V > 1 && i < n) {
    const acc a = static_cast<acc>(g[i]);
    total += static_cast<double>(a * a);
  }
  total = block_sum(total, smem);
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1) {
    *out = static_cast<scalar_t>(0.5 * weight * total / static_cast<double>(B));
  } else {
    partial[blockIdx.x] = total;
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    r1_penalty_finish_kernel(const double* __restrict__ partial, int64_t count, double weight, int64_t B,
                             scalar_t* __restrict__ out) {
  __shared__ double smem[kWarpsPerBlock];
  const double total = sum_partials(partial, count, 1, 0, smem);
  if (threadIdx.x == 0) *out = static_cast<scalar_t>(0.5 * weight * total / static_cast<double>(B));
}

// out = coef * grad with coef = weight / B * grad_out, grad_out read on the device (or
// passed by value when it lives on the host), so the backward never synchronises.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    r1_penalty_backward_kernel(const double* __restrict__ grad_out, double grad_out_value,
                               const scalar_t* __restrict__ g, int64_t n, double weight, int64_t B,
                               scalar_t* __restrict__ out) {
  using acc = acc_t<scalar_t>;
  const double go = grad_out != nullptr ? *grad_out : grad_out_value;
  const acc coef = static_cast<acc>(weight / static_cast<double>(B) * go);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t packs = n / V;
  for (int64_t p = first; p < packs; p += stride) {
    acc a[V];
    load_acc<V>(a, g + p * V);
#pragma unroll
    for (int i = 0; i < V; ++i) a[i] *= coef;
    store_acc<V>(out + p * V, a);
  }
  const int64_t i = packs * V + first;
  if (V > 1 && i < n) out[i] = static_cast<scalar_t>(coef * static_cast<acc>(g[i]));
}

at::Tensor r1_penalty_forward(const at::Tensor& grad_, double weight) {
  check_r1(grad_, weight);
  const c10::cuda::CUDAGuard guard(grad_.device());
  const at::Tensor grad = grad_.contiguous();
  const int64_t B = grad.size(0), n = grad.numel();
  at::Tensor out = at::empty({}, grad.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty_cuda", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(aligned16({gp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const int64_t blocks = flat_blocks(ceil_div(n, V));
      const Partials partial(blocks > 1, blocks, grad.options());
      launch(r1_penalty_kernel<scalar_t, V>, blocks, gp, n, weight, B, op, partial.ptr);
      if (partial.ptr) launch(r1_penalty_finish_kernel<scalar_t>, 1, partial.ptr, blocks, weight, B, op);
    });
  });
  return out;
}

at::Tensor r1_penalty_backward(const at::Tensor& grad_out_, const at::Tensor& grad_, double weight) {
  check_r1_backward(grad_out_, grad_);
  const c10::cuda::CUDAGuard guard(grad_.device());
  const at::Tensor grad = grad_.contiguous();
  const int64_t B = grad.size(0), n = grad.numel();
  at::Tensor out = at::empty(grad.sizes(), grad.options());
  if (n == 0) return out;
  // A host scalar is read here for free; a device one is read by the kernel.
  const bool on_host = grad_out_.is_cpu();
  const double grad_out_value = on_host ? grad_out_.item<double>() : 0.0;
  const at::Tensor grad_out = on_host ? at::Tensor() : grad_out_.to(grad.device(), at::kDouble).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty_backward_cuda",
                                  [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(aligned16({gp, op}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const double* grad_out_ptr = on_host ? nullptr : grad_out.const_data_ptr<double>();
      launch(r1_penalty_backward_kernel<scalar_t, V>, flat_blocks(ceil_div(n, V)), grad_out_ptr, grad_out_value, gp,
             n, weight, B, op);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("r1_penalty", &r1_penalty_forward);
  m.impl("_r1_penalty_backward", &r1_penalty_backward);
}

}  // namespace fastot::cuda
