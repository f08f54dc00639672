#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <string>
#include <tuple>

#include "../common/checks.h"
#include "../common/psi.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

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
    // The kind as a template argument: the loop below is straight-line code.
    with_psi_kind(kind, [&](auto k) {
      at::parallel_for(0, t.numel(), 16384, [&](int64_t i0, int64_t i1) {
        psi_star_values<decltype(k)::value>(tp + i0, vp + i0, gp + i0, acc(alpha), i1 - i0);
      });
    });
  });
  return {value, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("psi_star", &psi_star_forward);
}

}  // namespace fastot::cpu
