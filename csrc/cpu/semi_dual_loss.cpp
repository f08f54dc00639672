#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "../common/checks.h"
#include "../common/psi.h"
#include "loops.h"

namespace fastot::cpu {
namespace {

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
    with_psi_kind(source, [&](auto k) {  // t = v_fake - cost
      fake_sum = psi_star_sum<decltype(k)::value, true>(fp, cp, acc(1), acc(alpha), acc(1) / acc(B), dfp, B);
    });
    with_psi_kind(target, [&](auto k) {  // t = -v_real
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
  m.impl("semi_dual_loss", &semi_dual_loss_forward);
}

}  // namespace fastot::cpu
