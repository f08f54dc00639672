#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "../common/checks.h"
#include "../common/psi.h"
#include "launch.cuh"

namespace fastot::cuda {
namespace {

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
  const Partials partial(blocks > 1, 2 * blocks, fake.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, fake.scalar_type(), "semi_dual_loss_cuda", [&] {
    scalar_t* lp = loss.mutable_data_ptr<scalar_t>();
    launch(semi_dual_loss_kernel<scalar_t>, blocks, cost.const_data_ptr<scalar_t>(), fake.const_data_ptr<scalar_t>(),
           real.const_data_ptr<scalar_t>(), B, M, source, target, alpha, d_fake.mutable_data_ptr<scalar_t>(),
           d_real.mutable_data_ptr<scalar_t>(), lp, partial.ptr);
    if (partial.ptr) launch(semi_dual_loss_finish_kernel<scalar_t>, 1, partial.ptr, blocks, B, M, lp);
  });
  return {loss, d_fake, d_real};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("semi_dual_loss", &semi_dual_loss_forward);
}

}  // namespace fastot::cuda
