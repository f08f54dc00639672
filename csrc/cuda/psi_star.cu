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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "psi_star_cuda", [&] {
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    scalar_t* vp = value.mutable_data_ptr<scalar_t>();
    scalar_t* gp = deriv.mutable_data_ptr<scalar_t>();
    with_vec<scalar_t>(aligned16({tp, vp, gp}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      with_psi_kind(kind, [&](auto k) {
        launch(psi_star_kernel<scalar_t, V, decltype(k)::value>, flat_blocks(ceil_div(n, V)), tp, n, alpha, vp, gp);
      });
    });
  });
  return {value, deriv};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CUDA, m) {
  m.impl("psi_star", &psi_star_forward);
}

}  // namespace fastot::cuda
