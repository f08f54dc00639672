#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <string>
#include <tuple>
#include <type_traits>

#include "../common/checks.h"
#include "common.cuh"

namespace fastot::cuda {
namespace {

// Elementwise alpha * Psi*(t / alpha) and its derivative. The kind is a template argument,
// so the per-element switch of psi_star_value_grad folds away.
template <typename scalar_t, int V, PsiKind KIND>
__global__ void __launch_bounds__(kThreads)
    psi_star_kernel(const scalar_t* __restrict__ t, int64_t n, double alpha, scalar_t* __restrict__ value,
                    scalar_t* __restrict__ deriv) {
  using acc = acc_t<scalar_t>;
  const acc a = static_cast<acc>(alpha);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t packs = n / V;
  for (int64_t p = first; p < packs; p += stride) {
    acc in[V], v[V], g[V];
    load_acc<V>(in, t + p * V);
#pragma unroll
    for (int i = 0; i < V; ++i) psi_star_value_grad<acc>(KIND, in[i], a, &v[i], &g[i]);
    store_acc<V>(value + p * V, v);
    store_acc<V>(deriv + p * V, g);
  }
  // The last n % V elements, one per thread.
  const int64_t i = packs * V + first;
  if (V > 1 && i < n) {
    acc v, g;
    psi_star_value_grad<acc>(KIND, static_cast<acc>(t[i]), a, &v, &g);
    value[i] = static_cast<scalar_t>(v);
    deriv[i] = static_cast<scalar_t>(g);
  }
}

template <PsiKind KIND>
using Kind = std::integral_constant<PsiKind, KIND>;

template <typename scalar_t, int V>
void launch_psi_star(PsiKind kind, const scalar_t* t, int64_t n, double alpha, scalar_t* value, scalar_t* deriv,
                     cudaStream_t stream) {
  const dim3 blocks = grid(flat_blocks(ceil_div(n, V)));
  const auto launch = [&](auto k) {
    constexpr PsiKind K = decltype(k)::value;
    psi_star_kernel<scalar_t, V, K><<<blocks, kThreads, 0, stream>>>(t, n, alpha, value, deriv);
  };
  switch (kind) {
    case PsiKind::Identity:
      launch(Kind<PsiKind::Identity>{});
      break;
    case PsiKind::KL:
      launch(Kind<PsiKind::KL>{});
      break;
    case PsiKind::Chi2:
      launch(Kind<PsiKind::Chi2>{});
      break;
    case PsiKind::Softplus:
      launch(Kind<PsiKind::Softplus>{});
      break;
    case PsiKind::SoftplusUnscaled:
      launch(Kind<PsiKind::SoftplusUnscaled>{});
      break;
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> psi_star_forward(const at::Tensor& t_, c10::string_view kind_,
                                                    double alpha) {
  check_float(t_, "t");
  const PsiKind kind = parse_psi_kind(std::string(kind_), "kind");
  check_alpha(alpha);
  const c10::cuda::CUDAGuard guard(t_.device());
  const at::Tensor t = t_.contiguous();
  at::Tensor value = at::empty(t.sizes(), t.options()), deriv = at::empty(t.sizes(), t.options());
  const int64_t n = t.numel();
  if (n == 0) return {value, deriv};
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "psi_star_cuda", [&] {
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    scalar_t* vp = value.mutable_data_ptr<scalar_t>();
    scalar_t* gp = deriv.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(aligned16(tp) && aligned16(vp) && aligned16(gp), [&](auto v) {
      launch_psi_star<scalar_t, decltype(v)::value>(kind, tp, n, alpha, vp, gp, stream);
    });
  });
  return {value, deriv};
}

// One pass over the B + M scores: d loss / d v_fake, d loss / d v_real, and per-block sums
// of the two Psi* terms (written to the loss directly when one block covers everything).
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    semi_dual_loss_kernel(const scalar_t* __restrict__ cost, const scalar_t* __restrict__ fake,
                          const scalar_t* __restrict__ real, int64_t B, int64_t M, PsiKind source,
                          PsiKind target, double alpha, scalar_t* __restrict__ d_fake,
                          scalar_t* __restrict__ d_real, scalar_t* __restrict__ loss,
                          double* __restrict__ partial) {
  using acc = acc_t<scalar_t>;
  __shared__ double smem[kWarpsPerBlock];
  const acc a = static_cast<acc>(alpha);
  double fake_sum = 0.0, real_sum = 0.0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < B + M; i += stride) {
    acc v, g;
    if (i < B) {
      psi_star_value_grad<acc>(source, static_cast<acc>(fake[i]) - static_cast<acc>(cost[i]), a, &v, &g);
      fake_sum += v;
      d_fake[i] = static_cast<scalar_t>(g / static_cast<acc>(B));
    } else {
      const int64_t j = i - B;
      psi_star_value_grad<acc>(target, -static_cast<acc>(real[j]), a, &v, &g);
      real_sum += v;
      d_real[j] = static_cast<scalar_t>(-g / static_cast<acc>(M));
    }
  }
  fake_sum = block_sum(fake_sum, smem);
  real_sum = block_sum(real_sum, smem);
  if (threadIdx.x != 0) return;
  if (gridDim.x == 1) {
    *loss = static_cast<scalar_t>(fake_sum / static_cast<double>(B) + real_sum / static_cast<double>(M));
  } else {
    partial[2 * blockIdx.x] = fake_sum;
    partial[2 * blockIdx.x + 1] = real_sum;
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    semi_dual_loss_finish_kernel(const double* __restrict__ partial, int64_t count, int64_t B, int64_t M,
                                 scalar_t* __restrict__ loss) {
  __shared__ double smem[kWarpsPerBlock];
  const double fake_sum = sum_partials(partial, count, 2, 0, smem);
  const double real_sum = sum_partials(partial, count, 2, 1, smem);
  if (threadIdx.x == 0)
    *loss = static_cast<scalar_t>(fake_sum / static_cast<double>(B) + real_sum / static_cast<double>(M));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> semi_dual_loss_forward(
    const at::Tensor& cost_, const at::Tensor& fake_, const at::Tensor& real_, c10::string_view source_,
    c10::string_view target_, double alpha) {
  check_semi_dual(cost_, fake_, real_, alpha);
  const PsiKind source = parse_psi_kind(std::string(source_), "psi_source");
  const PsiKind target = parse_psi_kind(std::string(target_), "psi_target");
  const c10::cuda::CUDAGuard guard(fake_.device());
  const at::Tensor cost = cost_.contiguous(), fake = fake_.contiguous(), real = real_.contiguous();
  const int64_t B = fake.size(0), M = real.size(0);
  at::Tensor d_fake = at::empty_like(fake), d_real = at::empty_like(real);
  at::Tensor loss = at::empty({}, fake.options());
  const int64_t blocks = flat_blocks(B + M);
  at::Tensor partial;
  if (blocks > 1) partial = at::empty({2 * blocks}, fake.options().dtype(at::kDouble));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, fake.scalar_type(), "semi_dual_loss_cuda", [&] {
    double* pp = blocks > 1 ? partial.mutable_data_ptr<double>() : nullptr;
    scalar_t* lp = loss.mutable_data_ptr<scalar_t>();
    semi_dual_loss_kernel<scalar_t><<<grid(blocks), kThreads, 0, stream>>>(
        cost.const_data_ptr<scalar_t>(), fake.const_data_ptr<scalar_t>(), real.const_data_ptr<scalar_t>(), B, M,
        source, target, alpha, d_fake.mutable_data_ptr<scalar_t>(), d_real.mutable_data_ptr<scalar_t>(), lp,
        pp);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (blocks > 1) {
      semi_dual_loss_finish_kernel<scalar_t><<<1, kThreads, 0, stream>>>(pp, blocks, B, M, lp);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {loss, d_fake, d_real};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("psi_star", &psi_star_forward);
  m.impl("semi_dual_loss", &semi_dual_loss_forward);
}

}  // namespace fastot::cuda
