#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "launch.cuh"

namespace fastot::cuda {
namespace {

// Per (row, chunk) task: sum (x - y)^2. A row in one chunk writes scale * sum to out,
// otherwise the chunk's sum goes to partial[task] for finish_rows_kernel.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    quadratic_cost_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y, RowPlan plan,
                          double scale, scalar_t* __restrict__ out, double* __restrict__ partial) {
  using acc = acc_t<scalar_t>;
  __shared__ double smem[kWarpsPerBlock];
  const RowTask t = row_task(plan, plan.tasks());
  const scalar_t* xr = x + t.row * plan.d;
  const scalar_t* yr = y + t.row * plan.d;
  const int64_t stride = plan.stride(V);
  double total = 0.0;
  for (int64_t j = t.begin(V); j < t.j1;) {
    acc s = 0;
    for (int r = 0; r < kFlushPacks && j < t.j1; ++r, j += stride) {
      acc a[V], b[V];
      load_acc<V>(a, xr + j);
      load_acc<V>(b, yr + j);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const acc diff = a[i] - b[i];
        s += diff * diff;
      }
    }
    total += static_cast<double>(s);
  }
  total = group_sum(total, plan.group, smem);
  if (!t.active || t.lane != 0) return;
  if (plan.chunks == 1) {
    out[t.row] = static_cast<scalar_t>(scale * total);
  } else {
    partial[t.index] = total;
  }
}

// out[b] = scale * sum of the row's chunk partials, in double.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    finish_rows_kernel(const double* __restrict__ partial, int64_t rows, int64_t chunks, double scale,
                       scalar_t* __restrict__ out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= rows) return;
  double s = 0.0;
  for (int64_t c = 0; c < chunks; ++c) s += partial[b * chunks + c];
  out[b] = static_cast<scalar_t>(scale * s);
}

// out = coef_b * (x - y) with coef_b = 2 * scale * grad_b.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    quadratic_cost_backward_kernel(const double* __restrict__ grad, const scalar_t* __restrict__ x,
                                   const scalar_t* __restrict__ y, RowPlan plan, double scale,
                                   scalar_t* __restrict__ out) {
  using acc = acc_t<scalar_t>;
  const RowTask t = row_task(plan, plan.tasks());
  if (!t.active) return;
  const acc coef = static_cast<acc>(2.0 * scale * grad[t.row]);
  const int64_t base = t.row * plan.d;
  for (int64_t j = t.begin(V); j < t.j1; j += plan.stride(V)) {
    acc a[V], b[V];
    load_acc<V>(a, x + base + j);
    load_acc<V>(b, y + base + j);
#pragma unroll
    for (int i = 0; i < V; ++i) a[i] = coef * (a[i] - b[i]);
    store_acc<V>(out + base + j, a);
  }
}

at::Tensor quadratic_cost_forward(const at::Tensor& x_, const at::Tensor& y_, double scale) {
  check_pair(x_, y_);
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const int64_t B = x.size(0), d = x.size(1);
  at::Tensor out = at::empty({B}, x.options());
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "quadratic_cost_cuda", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(d % kVec<scalar_t> == 0 && aligned16({xp, yp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const RowPlan plan = plan_rows(B, d, V, B);
      const Partials partial(plan.chunks > 1, plan.tasks(), x.options());
      launch(quadratic_cost_kernel<scalar_t, V>, plan.blocks(plan.tasks()), xp, yp, plan, scale, op, partial.ptr);
      if (partial.ptr) launch(finish_rows_kernel<scalar_t>, ceil_div(B, kThreads), partial.ptr, B, plan.chunks, scale, op);
    });
  });
  return out;
}

at::Tensor quadratic_cost_backward(const at::Tensor& grad_, const at::Tensor& x_, const at::Tensor& y_,
                                   double scale) {
  check_pair(x_, y_);
  check_sample_grad(grad_, x_.size(0));
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const at::Tensor grad = grad_.to(x.device(), at::kDouble).contiguous();
  const int64_t B = x.size(0), d = x.size(1);
  at::Tensor out = at::empty(x.sizes(), x.options());
  if (x.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "quadratic_cost_backward_cuda",
                                  [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(d % kVec<scalar_t> == 0 && aligned16({xp, yp, op}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const RowPlan plan = plan_rows(B, d, V, B);
      launch(quadratic_cost_backward_kernel<scalar_t, V>, plan.blocks(plan.tasks()), grad.const_data_ptr<double>(),
             xp, yp, plan, scale, op);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("quadratic_cost", &quadratic_cost_forward);
  m.impl("_quadratic_cost_backward", &quadratic_cost_backward);
}

}  // namespace fastot::cuda
