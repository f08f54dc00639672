#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <tuple>

#include "../common/checks.h"
#include "../common/math.h"
#include "launch.cuh"

namespace fastot::cuda {
namespace {

// The two rows whose distance is norm k of row b: (x, y_k) for k < Z, then the pairs
// (y_i, y_j), i < j, in row-major order.
template <typename scalar_t>
__device__ __forceinline__ void norm_rows(const scalar_t* x, const scalar_t* y, int64_t b, int64_t k, int64_t Z,
                                          int64_t d, const scalar_t** first, const scalar_t** second) {
  if (k < Z) {
    *first = x + b * d;
    *second = y + (b * Z + k) * d;
    return;
  }
  int64_t p = k - Z, i = 0;
  while (p >= Z - 1 - i) {
    p -= Z - 1 - i;
    ++i;
  }
  *first = y + (b * Z + i) * d;
  *second = y + (b * Z + i + 1 + p) * d;
}

// Per (row, chunk, norm) task: the chunk's share of one squared distance. Tasks of one
// (row, chunk) are adjacent, so the Z rows of a chunk are read from DRAM about once and
// from L2 for the other Z + Z (Z - 1) / 2 - 1 distances. Squared distances are summed from
// differences, in float over at most kFlushPacks packs per thread and in double above
// that, as accurate as the CPU kernel's float blocks of 128 added in double.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    energy_sq_dist_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y, int64_t Z, int64_t K,
                          RowPlan plan, double* __restrict__ partial) {
  using acc = acc_t<scalar_t>;
  __shared__ double smem[kWarpsPerBlock];
  const RowTask t = row_task(plan, plan.tasks() * K, K);
  const scalar_t* a = x;
  const scalar_t* b = x;
  if (t.active) norm_rows(x, y, t.row, t.index % K, Z, plan.d, &a, &b);
  const int64_t stride = plan.stride(V);
  double total = 0.0;
  for (int64_t j = t.begin(V); j < t.j1;) {
    acc s = 0;
    for (int r = 0; r < kFlushPacks && j < t.j1; ++r, j += stride) {
      acc av[V], bv[V];
      load_acc<V>(av, a + j);
      load_acc<V>(bv, b + j);
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const acc diff = av[i] - bv[i];
        s += diff * diff;
      }
    }
    total += static_cast<double>(s);
  }
  total = group_sum(total, plan.group, smem);
  if (t.active && t.lane == 0) partial[t.index] = total;
}

// One block per row: norms from the chunk partials, then the cost
// scale * (1/2 mean_z ||x - y_z|| - gamma / 4 * mean_{z != z'} ||y_z - y_z'||).
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    energy_finish_kernel(const double* __restrict__ partial, int64_t chunks, int64_t Z, int64_t K, double gamma,
                         double scale, acc_t<scalar_t>* __restrict__ norms, scalar_t* __restrict__ out) {
  __shared__ double smem[kWarpsPerBlock];
  const int64_t b = blockIdx.x;
  double transport = 0.0, spread = 0.0;
  for (int64_t k = threadIdx.x; k < K; k += kThreads) {
    double sq = 0.0;
    for (int64_t c = 0; c < chunks; ++c) sq += partial[(b * chunks + c) * K + k];
    const double n = sqrt(sq);
    norms[b * K + k] = static_cast<acc_t<scalar_t>>(n);
    (k < Z ? transport : spread) += n;
  }
  transport = block_sum(transport, smem);
  spread = block_sum(spread, smem);
  if (threadIdx.x != 0) return;
  // sum over z != z' counts every pair twice.
  const double cost = 0.5 * transport / Z - 0.25 * gamma * (2.0 * spread) / static_cast<double>(Z * (Z - 1));
  out[b] = static_cast<scalar_t>(scale * cost);
}

// coef[b, k] = a_z = g s / (2 Z ||x - y_z||) for k = z < Z, b_p = g s gamma / (2 Z (Z - 1) ||y_i - y_j||)
// for the pairs; 0 where a norm is 0.
template <typename acc>
__global__ void __launch_bounds__(kThreads)
    energy_coef_kernel(const double* __restrict__ grad, const double* __restrict__ norms, int64_t B, int64_t Z,
                       int64_t K, double gamma, double scale, acc* __restrict__ coef) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= B * K) return;
  const int64_t b = idx / K, k = idx % K;
  const double gs = grad[b] * scale;
  const double c = k < Z ? gs / (2.0 * Z) : gs * gamma / (2.0 * Z * (Z - 1));
  coef[idx] = static_cast<acc>(c * inv_norm_or_zero(norms[idx]));
}

// d/dy_z = a_z (y_z - x) - sum_{pairs (z, w)} b_p (y_z - y_w),  d/dx = sum_z a_z (x - y_z),
// summed per column in registers in the order of the CPU kernel.
template <typename scalar_t, int V>
__global__ void __launch_bounds__(kThreads)
    energy_backward_kernel(const acc_t<scalar_t>* __restrict__ coef, const scalar_t* __restrict__ x,
                           const scalar_t* __restrict__ y, int64_t Z, int64_t K, RowPlan plan,
                           scalar_t* __restrict__ gx, scalar_t* __restrict__ gy) {
  using acc = acc_t<scalar_t>;
  const RowTask t = row_task(plan, plan.tasks());
  if (!t.active) return;
  const int64_t d = plan.d;
  const acc* cr = coef + t.row * K;
  const acc* pair_coef = cr + Z;
  const scalar_t* xr = x + t.row * d;
  const scalar_t* yr = y + t.row * Z * d;
  for (int64_t j = t.begin(V); j < t.j1; j += plan.stride(V)) {
    acc xv[V], gxv[V];
    load_acc<V>(xv, xr + j);
#pragma unroll
    for (int i = 0; i < V; ++i) gxv[i] = acc(0);
    for (int64_t z = 0; z < Z; ++z) {
      acc yz[V], g[V];
      load_acc<V>(yz, yr + z * d + j);
      const acc a = cr[z];
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const acc tz = a * (yz[i] - xv[i]);
        g[i] = tz;
        gxv[i] -= tz;
      }
      for (int64_t w = 0; w < Z; ++w) {
        if (w == z) continue;
        acc yw[V];
        load_acc<V>(yw, yr + w * d + j);
        if (w < z) {
          const acc c = pair_coef[pair_index(w, z, Z)];
#pragma unroll
          for (int i = 0; i < V; ++i) g[i] += c * (yw[i] - yz[i]);
        } else {
          const acc c = pair_coef[pair_index(z, w, Z)];
#pragma unroll
          for (int i = 0; i < V; ++i) g[i] -= c * (yz[i] - yw[i]);
        }
      }
      store_acc<V>(gy + (t.row * Z + z) * d + j, g);
    }
    store_acc<V>(gx + t.row * d + j, gxv);
  }
}

// norms[b] = (||x - y_0||, ..., ||x - y_{Z-1}||, ||y_i - y_j|| for i < j).
std::tuple<at::Tensor, at::Tensor> energy_kernel_cost_forward(const at::Tensor& x_, const at::Tensor& y_,
                                                              double gamma, double scale) {
  check_weak(x_, y_);
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const int64_t B = x.size(0), Z = y.size(1), d = x.size(1), P = Z * (Z - 1) / 2, K = Z + P;
  const auto norm_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({B}, x.options());
  at::Tensor norms = at::empty({B, K}, x.options().dtype(norm_dtype));
  if (B == 0) return {out, norms};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "energy_kernel_cost_cuda", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    with_vec<scalar_t>(d % kVec<scalar_t> == 0 && aligned16({xp, yp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const RowPlan plan = plan_rows(B, d, V, B * K);
      const Partials partial(true, plan.tasks() * K, x.options());
      launch(energy_sq_dist_kernel<scalar_t, V>, plan.blocks(plan.tasks() * K), xp, yp, Z, K, plan, partial.ptr);
      launch(energy_finish_kernel<scalar_t>, B, partial.ptr, plan.chunks, Z, K, gamma, scale,
             norms.mutable_data_ptr<acc>(), out.mutable_data_ptr<scalar_t>());
    });
  });
  return {out, norms};
}

std::tuple<at::Tensor, at::Tensor> energy_kernel_cost_backward(const at::Tensor& grad_, const at::Tensor& x_,
                                                               const at::Tensor& y_, const at::Tensor& norms_,
                                                               double gamma, double scale) {
  check_weak(x_, y_);
  const int64_t B = x_.size(0), Z = y_.size(1), d = x_.size(1), P = Z * (Z - 1) / 2, K = Z + P;
  check_sample_grad(grad_, B);
  check_energy_norms(norms_, B, K);
  const c10::cuda::CUDAGuard guard(x_.device());
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const at::Tensor grad = grad_.to(x.device(), at::kDouble).contiguous();
  const at::Tensor norms = norms_.to(x.device(), at::kDouble).contiguous();
  at::Tensor gx = at::empty(x.sizes(), x.options()), gy = at::empty(y.sizes(), y.options());
  if (x.numel() == 0) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "energy_kernel_cost_backward_cuda",
                                  [&] {
    using acc = acc_t<scalar_t>;
    const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor coef = at::empty({B, K}, x.options().dtype(acc_dtype));
    acc* cp = coef.mutable_data_ptr<acc>();
    launch(energy_coef_kernel<acc>, ceil_div(B * K, kThreads), grad.const_data_ptr<double>(),
           norms.const_data_ptr<double>(), B, Z, K, gamma, scale, cp);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    scalar_t* gxp = gx.mutable_data_ptr<scalar_t>();
    scalar_t* gyp = gy.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(d % kVec<scalar_t> == 0 && aligned16({xp, yp, gxp, gyp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      const RowPlan plan = plan_rows(B, d, V, B);
      launch(energy_backward_kernel<scalar_t, V>, plan.blocks(plan.tasks()), cp, xp, yp, Z, K, plan, gxp, gyp);
    });
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("energy_kernel_cost", &energy_kernel_cost_forward);
  m.impl("_energy_kernel_cost_backward", &energy_kernel_cost_backward);
}

}  // namespace fastot::cuda
