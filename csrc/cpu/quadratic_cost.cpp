#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../common/checks.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

at::Tensor quadratic_cost_forward(const at::Tensor& x_, const at::Tensor& y_, double scale) {
  check_pair(x_, y_);
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const int64_t B = x.size(0), d = x.size(1);
  at::Tensor out = at::empty({B}, x.options());
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "quadratic_cost", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    const auto sums = RowChunks(B, d).reduce(1, [&](int64_t b, int64_t j0, int64_t j1, double* acc) {
      acc[0] += sq_diff_sum(xp + b * d + j0, yp + b * d + j0, j1 - j0);
    });
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) op[b] = static_cast<scalar_t>(scale * sums[b]);
  });
  return out;
}

at::Tensor quadratic_cost_backward(const at::Tensor& grad_, const at::Tensor& x_, const at::Tensor& y_,
                                   double scale) {
  check_pair(x_, y_);
  check_sample_grad(grad_, x_.size(0));
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const at::Tensor grad = grad_.to(at::TensorOptions().dtype(at::kDouble)).contiguous();
  const int64_t B = x.size(0), d = x.size(1);
  at::Tensor out = empty_output_like(x);
  if (x.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "quadratic_cost_backward", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    const double* gp = grad.const_data_ptr<double>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    RowChunks(B, d).run([&](int64_t b, int64_t, int64_t j0, int64_t j1) {
      const auto coef = static_cast<acc_t<scalar_t>>(2.0 * scale * gp[b]);
      scaled_diff(op + b * d + j0, xp + b * d + j0, yp + b * d + j0, coef, j1 - j0);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("quadratic_cost", &quadratic_cost_forward);
  m.impl("_quadratic_cost_backward", &quadratic_cost_backward);
}

}  // namespace fastot::cpu
