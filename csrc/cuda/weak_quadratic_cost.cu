#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <tuple>

#include "../common/checks.h"
#include "launch.cuh"

namespace fastot::cuda {
namespace {

// mean[i] = (1 / Z) sum_z y_z[j + i] for the V elements at column j of one row of y.
template <int V, typename scalar_t>
__device__ __forceinline__ void column_mean(acc_t<scalar_t> (&mean)[V], const scalar_t* yr, int64_t Z,
                                            int64_t d, int64_t j) {
  using acc = acc_t<scalar_t>;
#pragma unroll
  for (int i = 0; i < V; ++i) mean[i] = acc(0);
  for (int64_t z = 0; z < Z; ++z) {
    acc v[V];
    load_acc<V>(v, yr + z * d + j);
#pragma unroll
    for (int i = 0; i < V; ++i) mean[i] += v[i];
  }
  const acc inv_z = acc(1) / static_cast<acc>(Z);
#pragma unroll
  for (int i = 0; i < V; ++i) mean[i] *= inv_z;
}

// Per (row, chunk) task: transport sum (x - y_z)^2 and spread sum (y_z - mean)^2 over the
// chunk, from differences to the column mean (no E[y^2] - E[y]^2 cancellation); the Z
// values of a column are read twice, the second time from cache.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    weak_quadratic_cost_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y, int64_t Z,
                               RowPlan plan, double gamma, double scale, scalar_t* __restrict__ out,
                               double* __restrict__ partial) {
  using acc = acc_t<scalar_t>;
  __shared__ double smem[kWarpsPerBlock];
  const RowTask t = row_task(plan, plan.tasks());
  const int64_t d = plan.d;
  const scalar_t* xr = x + t.row * d;
  const scalar_t* yr = y + t.row * Z * d;
  const int64_t stride = plan.stride(V);
  double transport = 0.0, spread = 0.0;
  for (int64_t j = t.begin(V); j < t.j1;) {
    acc ts = 0, ss = 0;
    for (int r = 0; r < kFlushPacks && j < t.j1; ++r, j += stride) {
      acc xv[V], mean[V];
      load_acc<V>(xv, xr + j);
      column_mean<V>(mean, yr, Z, d, j);
      for (int64_t z = 0; z < Z; ++z) {
        acc v[V];
        load_acc<V>(v, yr + z * d + j);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const acc dx = xv[i] - v[i];
          const acc dm = v[i] - mean[i];
          ts += dx * dx;
          ss += dm * dm;
        }
      }
    }
    transport += static_cast<double>(ts);
    spread += static_cast<double>(ss);
  }
  transport = group_sum(transport, plan.group, smem);
  spread = group_sum(spread, plan.group, smem);
  if (!t.active || t.lane != 0) return;
  if (plan.chunks == 1) {
    const double cost = transport / (2.0 * Z) - 0.5 * gamma * (spread / static_cast<double>(Z - 1));
    out[t.row] = static_cast<scalar_t>(scale * cost);
  } else {
    partial[2 * t.index] = transport;
    partial[2 * t.index + 1] = spread;
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    weak_quadratic_cost_finish_kernel(const double* __restrict__ partial, int64_t rows, int64_t chunks,
                                      int64_t Z, double gamma, double scale, scalar_t* __restrict__ out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (b >= rows) return;
  double transport = 0.0, spread = 0.0;
  for (int64_t c = 0; c < chunks; ++c) {
    transport += partial[2 * (b * chunks + c)];
    spread += partial[2 * (b * chunks + c) + 1];
  }
  const double cost = transport / (2.0 * Z) - 0.5 * gamma * (spread / static_cast<double>(Z - 1));
  out[b] = static_cast<scalar_t>(scale * cost);
}

// d/dy_z = g s ((y_z - x) / Z - gamma / (Z - 1) (y_z - mean)),  d/dx = g s (x - mean).
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    weak_quadratic_cost_backward_kernel(const double* __restrict__ grad, const scalar_t* __restrict__ x,
                                        const scalar_t* __restrict__ y, int64_t Z, RowPlan plan, double gamma,
                                        double scale, scalar_t* __restrict__ gx, scalar_t* __restrict__ gy) {
  using acc = acc_t<scalar_t>;
  const RowTask t = row_task(plan, plan.tasks());
  if (!t.active) return;
  const int64_t d = plan.d;
  const acc gs = static_cast<acc>(grad[t.row] * scale);
  const acc c_t = gs / static_cast<acc>(Z);
  const acc c_v = gs * static_cast<acc>(gamma) / static_cast<acc>(Z - 1);
  const scalar_t* xr = x + t.row * d;
  const scalar_t* yr = y + t.row * Z * d;
  scalar_t* gxr = gx + t.row * d;
  scalar_t* gyr = gy + t.row * Z * d;
  for (int64_t j = t.begin(V); j < t.j1; j += plan.stride(V)) {
    acc xv[V], mean[V], o[V];
    load_acc<V>(xv, xr + j);
    column_mean<V>(mean, yr, Z, d, j);
#pragma unroll
    for (int i = 0; i < V; ++i) o[i] = gs * (xv[i] - mean[i]);
    store_acc<V>(gxr + j, o);
    for (int64_t z = 0; z < Z; ++z) {
      acc v[V];
      load_acc<V>(v, yr + z * d + j);
#pragma unroll
      for (int i = 0; i < V; ++i) o[i] = c_t * (v[i] - xv[i]) - c_v * (v[i] - mean[i]);
      store_acc<V>(gyr + z * d + j, o);
    }
  }
}

at::Tensor weak_quadratic_cost_forward(const at::Tensor& x_, const at::Tensor& y_, double gamma,
                                       double scale) {
  check_weak(x_, y_);
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const int64_t B = x.size(0), Z = y.size(1), d = x.size(1);
  at::Tensor out = at::empty({B}, x.options());
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "weak_quadratic_cost_cuda", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(d % kVec<scalar_t> == 0 && aligned16({xp, yp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const RowPlan plan = plan_rows(B, d, V, B);
      const Partials partial(plan.chunks > 1, 2 * plan.tasks(), x.options());
      launch(weak_quadratic_cost_kernel<scalar_t, V>, plan.blocks(plan.tasks()), xp, yp, Z, plan, gamma, scale, op,
             partial.ptr);
      if (partial.ptr)
        launch(weak_quadratic_cost_finish_kernel<scalar_t>, ceil_div(B, kThreads), partial.ptr, B, plan.chunks, Z,
               gamma, scale, op);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> weak_quadratic_cost_backward(const at::Tensor& grad_, const at::Tensor& x_,
                                                                const at::Tensor& y_, double gamma,
                                                                double scale) {
  check_weak(x_, y_);
  check_sample_grad(grad_, x_.size(0));
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const at::Tensor grad = grad_.to(x.device(), at::kDouble).contiguous();
  const int64_t B = x.size(0), Z = y.size(1), d = x.size(1);
  at::Tensor gx = at::empty(x.sizes(), x.options()), gy = at::empty(y.sizes(), y.options());
  if (x.numel() == 0) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "weak_quadratic_cost_backward_cuda",
                                  [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    scalar_t* gxp = gx.mutable_data_ptr<scalar_t>();
    scalar_t* gyp = gy.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(d % kVec<scalar_t> == 0 && aligned16({xp, yp, gxp, gyp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const RowPlan plan = plan_rows(B, d, V, B);
      launch(weak_quadratic_cost_backward_kernel<scalar_t, V>, plan.blocks(plan.tasks()),
             grad.const_data_ptr<double>(), xp, yp, Z, plan, gamma, scale, gxp, gyp);
    });
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("weak_quadratic_cost", &weak_quadratic_cost_forward);
  m.impl("_weak_quadratic_cost_backward", &weak_quadratic_cost_backward);
}

}  // namespace fastot::cuda
