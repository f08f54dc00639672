#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <tuple>

#include "../common/checks.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

// (weight / 2) * mean of the per-row sums of squares, into the 0-d out.
template <typename scalar_t>
void store_penalty(at::Tensor& out, const std::vector<double>& sums, double weight, int64_t B) {
  double total = 0.0;
  for (const double s : sums) total += s;
  *out.mutable_data_ptr<scalar_t>() = scalar_t(0.5 * weight * total / double(B));
}

// out = coef * grad over [B, d].
template <typename scalar_t>
void store_scaled(at::Tensor& out, const at::Tensor& grad, double coef) {
  const int64_t d = grad.size(1);
  const scalar_t* gp = grad.const_data_ptr<scalar_t>();
  scalar_t* op = out.mutable_data_ptr<scalar_t>();
  RowChunks(grad.size(0), d).run([&](int64_t b, int64_t, int64_t j0, int64_t j1) {
    scaled(op + b * d + j0, gp + b * d + j0, static_cast<acc_t<scalar_t>>(coef), j1 - j0);
  });
}

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
    store_penalty<scalar_t>(out, sums, weight, B);
  });
  return out;
}

at::Tensor r1_penalty_backward(const at::Tensor& grad_out, const at::Tensor& grad_, double weight) {
  check_r1_backward(grad_out, grad_);
  const at::Tensor grad = grad_.contiguous();
  at::Tensor out = empty_output_like(grad);
  if (grad.numel() == 0) return out;
  const double coef = weight / double(grad.size(0)) * grad_out.item<double>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty_backward",
                                  [&] { store_scaled<scalar_t>(out, grad, coef); });
  return out;
}

// The penalty and its gradient for grad_out = 1 in one pass over grad: training always
// backpropagates R1, and on the CPU the backward then has nothing left to read.
std::tuple<at::Tensor, at::Tensor> r1_penalty_and_grad(const at::Tensor& grad_, double weight) {
  check_r1(grad_, weight);
  const at::Tensor grad = grad_.contiguous();
  const int64_t B = grad.size(0), d = grad.size(1);
  at::Tensor out = at::empty({}, grad.options());
  at::Tensor d_grad = empty_output_like(grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty_and_grad", [&] {
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    scalar_t* dp = d_grad.mutable_data_ptr<scalar_t>();
    // The same coefficient, in the same type, as r1_penalty_backward's at grad_out = 1.
    const auto coef = static_cast<acc_t<scalar_t>>(weight / double(B));
    const auto sums = RowChunks(B, d).reduce(1, [&](int64_t b, int64_t j0, int64_t j1, double* acc) {
      acc[0] += sq_sum_and_scaled(dp + b * d + j0, gp + b * d + j0, coef, j1 - j0);
    });
    store_penalty<scalar_t>(out, sums, weight, B);
  });
  return {out, d_grad};
}

// d_grad, from r1_penalty_and_grad, becomes the gradient for grad_out: it already is when
// grad_out is 1 (reading it costs nothing on the CPU); otherwise it is rewritten from grad,
// which gives the same numbers as r1_penalty_backward.
void r1_penalty_grad_for(const at::Tensor& d_grad, const at::Tensor& grad_out, const at::Tensor& grad_,
                         double weight) {
  check_r1_backward(grad_out, grad_);
  TORCH_CHECK_VALUE(d_grad.sizes() == grad_.sizes() && d_grad.scalar_type() == grad_.scalar_type() &&
                        d_grad.is_contiguous(),
                    "d_grad must be a contiguous tensor shaped and typed like grad, got ", d_grad.sizes(), " ",
                    d_grad.scalar_type(), " for grad ", grad_.sizes(), " ", grad_.scalar_type());
  const double go = grad_out.item<double>();
  if (go == 1.0 || d_grad.numel() == 0) return;
  at::Tensor out = d_grad;
  const at::Tensor grad = grad_.contiguous();
  const double coef = weight / double(grad.size(0)) * go;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "r1_penalty_grad_for",
                                  [&] { store_scaled<scalar_t>(out, grad, coef); });
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("r1_penalty", &r1_penalty_forward);
  m.impl("_r1_penalty_backward", &r1_penalty_backward);
  m.impl("_r1_penalty_and_grad", &r1_penalty_and_grad);
  m.impl("_r1_penalty_grad_for_", &r1_penalty_grad_for);
}

}  // namespace fastot::cpu
