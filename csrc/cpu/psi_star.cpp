#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>
#include <type_traits>

#include "../common/checks.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

template <PsiKind K>
using Kind = std::integral_constant<PsiKind, K>;

// Calls f(Kind<kind>{}) so that the per-element switch of psi_star_value_grad folds away
// and the loops below are straight-line code.
template <typename F>
void with_kind(PsiKind kind, F&& f) {
  switch (kind) {
    case PsiKind::Identity: return f(Kind<PsiKind::Identity>{});
    case PsiKind::KL: return f(Kind<PsiKind::KL>{});
    case PsiKind::Chi2: return f(Kind<PsiKind::Chi2>{});
    case PsiKind::Softplus: return f(Kind<PsiKind::Softplus>{});
    case PsiKind::SoftplusUnscaled: return f(Kind<PsiKind::SoftplusUnscaled>{});
  }
  TORCH_CHECK(false, "unknown Psi* kind ", static_cast<int>(kind));
}

std::tuple<at::Tensor, at::Tensor> psi_star_forward(const at::Tensor& t_, c10::string_view kind_,
                                                    double alpha) {
  check_float(t_, "t");
  const PsiKind kind = parse_psi_kind(std::string(kind_), "kind");
  check_alpha(alpha);
  const at::Tensor t = t_.contiguous();
  at::Tensor value = empty_output_like(t), grad = empty_output_like(t);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.scalar_type(), "psi_star", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* tp = t.const_data_ptr<scalar_t>();
    scalar_t* vp = value.mutable_data_ptr<scalar_t>();
    scalar_t* gp = grad.mutable_data_ptr<scalar_t>();
    with_kind(kind, [&](auto k) {
      at::parallel_for(0, t.numel(), 16384, [&](int64_t i0, int64_t i1) {
        psi_star_values<decltype(k)::value>(tp + i0, vp + i0, gp + i0, acc(alpha), i1 - i0);
      });
    });
  });
  return {value, grad};
}

// One pass over the scores: the loss, and its gradients for v_fake and v_real (the
// gradient for cost is minus the one for v_fake).
std::tuple<at::Tensor, at::Tensor, at::Tensor> semi_dual_loss_forward(
    const at::Tensor& cost_, const at::Tensor& fake_, const at::Tensor& real_, c10::string_view source_,
    c10::string_view target_, double alpha) {
  check_semi_dual(cost_, fake_, real_, alpha);
  const PsiKind source = parse_psi_kind(std::string(source_), "psi_source");
  const PsiKind target = parse_psi_kind(std::string(target_), "psi_target");
  const at::Tensor cost = cost_.contiguous(), fake = fake_.contiguous(), real = real_.contiguous();
  const int64_t B = fake.size(0), M = real.size(0);
  at::Tensor d_fake = at::empty_like(fake), d_real = at::empty_like(real);
  at::Tensor loss = at::empty({}, fake.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, fake.scalar_type(), "semi_dual_loss", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* cp = cost.const_data_ptr<scalar_t>();
    const scalar_t* fp = fake.const_data_ptr<scalar_t>();
    const scalar_t* rp = real.const_data_ptr<scalar_t>();
    scalar_t* dfp = d_fake.mutable_data_ptr<scalar_t>();
    scalar_t* drp = d_real.mutable_data_ptr<scalar_t>();
    double fake_sum = 0.0, real_sum = 0.0;
    with_kind(source, [&](auto k) {  // t = v_fake - cost
      fake_sum = psi_star_sum<decltype(k)::value, true>(fp, cp, acc(1), acc(alpha), acc(1) / acc(B), dfp, B);
    });
    with_kind(target, [&](auto k) {  // t = -v_real
      const scalar_t* no_cost = nullptr;
      real_sum = psi_star_sum<decltype(k)::value, false>(rp, no_cost, acc(-1), acc(alpha), acc(-1) / acc(M),
                                                         drp, M);
    });
    *loss.mutable_data_ptr<scalar_t>() = scalar_t(fake_sum / double(B) + real_sum / double(M));
  });
  return {loss, d_fake, d_real};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("psi_star", &psi_star_forward);
  m.impl("semi_dual_loss", &semi_dual_loss_forward);
}

}  // namespace fastot::cpu
