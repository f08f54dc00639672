#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

at::Tensor r1_penalty_forward(const at::Tensor& grad_, double weight) {
  check_r1(grad_, weight);
  const at::Tensor grad = grad_.contiguous();
  const int64_t B = grad.size(0), d = grad.size(1);
  at::Tensor out = at::empty({}, grad.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const auto sums = RowChunks(B, d).reduce(1, [&](int64_t b, int64_t j0, int64_t j1, double* acc) {
      acc[0] += sq_sum(gp + b * d + j0, j1 - j0);
    });
    double total = 0.0;
    for (const double s : sums) total += s;
    *out.mutable_data_ptr<scalar_t>() = scalar_t(0.5 * weight * total / double(B));
  });
  return out;
}

at::Tensor r1_penalty_backward(const at::Tensor& grad_out, const at::Tensor& grad_, double weight) {
  check_r1_backward(grad_out, grad_);
  const at::Tensor grad = grad_.contiguous();
  const int64_t B = grad.size(0), d = grad.size(1);
  at::Tensor out = empty_output_like(grad);
  if (grad.numel() == 0) return out;
  const double coef = weight / double(B) * grad_out.item<double>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty_backward", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    RowChunks(B, d).run([&](int64_t b, int64_t, int64_t j0, int64_t j1) {
      scaled(op + b * d + j0, gp + b * d + j0, static_cast<acc_t<scalar_t>>(coef), j1 - j0);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("r1_penalty", &r1_penalty_forward);
  m.impl("_r1_penalty_backward", &r1_penalty_backward);
}

}  // namespace fastot::cpu
