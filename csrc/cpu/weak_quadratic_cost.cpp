#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../common/checks.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

// mean[j] = (1 / Z) sum_z y_z[t0 + j] for one tile of one row.
template <typename scalar_t>
void tile_mean(acc_t<scalar_t>* mean, const scalar_t* yb, int64_t Z, int64_t d, int64_t t0, int64_t n) {
  using acc = acc_t<scalar_t>;
  std::fill(mean, mean + n, acc(0));
  for (int64_t z = 0; z < Z; ++z) accumulate(mean, yb + z * d + t0, n);
  const acc inv_z = acc(1) / acc(Z);
  for (int64_t j = 0; j < n; ++j) mean[j] *= inv_z;
}

// Transport and variance sums from differences to the tile mean (no E[y^2] - E[y]^2
// cancellation); the Z rows of a tile stay in cache between the two passes.
template <typename scalar_t>
void forward_impl(const scalar_t* xp, const scalar_t* yp, scalar_t* op, int64_t B, int64_t Z, int64_t d,
                  double gamma, double scale) {
  using acc = acc_t<scalar_t>;
  const auto sums = RowChunks(B, d).reduce(2, [&](int64_t b, int64_t j0, int64_t j1, double* out2) {
    acc mean[kTile];
    const scalar_t* xb = xp + b * d;
    const scalar_t* yb = yp + b * Z * d;
    const bool done = with_small_z(Z, [&](auto z) {
      weak_sums_columns<decltype(z)::value>(xb + j0, yb + j0, d, j1 - j0, out2);
    });
    if (done) return;
    for (int64_t t0 = j0; t0 < j1; t0 += kTile) {  // larger Z: passes over cached tiles
      const int64_t n = std::min(j1, t0 + kTile) - t0;
      tile_mean(mean, yb, Z, d, t0, n);
      acc transport = 0, spread = 0;
      for (int64_t z = 0; z < Z; ++z) weak_tile_sums(xb + t0, yb + z * d + t0, mean, n, &transport, &spread);
      out2[0] += transport;
      out2[1] += spread;
    }
  });
  for (int64_t b = 0; b < B; ++b) {
    const double transport = sums[2 * b] / (2.0 * Z), var_hat = sums[2 * b + 1] / double(Z - 1);
    op[b] = scalar_t(scale * (transport - 0.5 * gamma * var_hat));
  }
}

// d/dy_z = g s ((y_z - x) / Z - gamma / (Z - 1) (y_z - mean)),  d/dx = g s (x - mean).
template <typename scalar_t>
void backward_impl(const double* gp, const scalar_t* xp, const scalar_t* yp, scalar_t* gxp, scalar_t* gyp,
                   int64_t B, int64_t Z, int64_t d, double gamma, double scale) {
  using acc = acc_t<scalar_t>;
  RowChunks(B, d).run([&](int64_t b, int64_t, int64_t j0, int64_t j1) {
    const acc gs = acc(gp[b] * scale);
    const acc c_t = gs / acc(Z), c_v = gs * acc(gamma) / acc(Z - 1);
    acc mean[kTile];
    const scalar_t* xb = xp + b * d;
    const scalar_t* yb = yp + b * Z * d;
    const bool done = with_small_z(Z, [&](auto z) {
      weak_grad_columns<decltype(z)::value>(gxp + b * d + j0, gyp + b * Z * d + j0, xb + j0, yb + j0, d, gs,
                                            c_t, c_v, j1 - j0);
    });
    if (done) return;
    for (int64_t t0 = j0; t0 < j1; t0 += kTile) {  // larger Z: passes over cached tiles
      const int64_t n = std::min(j1, t0 + kTile) - t0;
      tile_mean(mean, yb, Z, d, t0, n);
      for (int64_t j = 0; j < n; ++j) gxp[b * d + t0 + j] = scalar_t(gs * (acc(xb[t0 + j]) - mean[j]));
      for (int64_t z = 0; z < Z; ++z)
        weak_tile_grad(gyp + (b * Z + z) * d + t0, xb + t0, yb + z * d + t0, mean, c_t, c_v, n);
    }
  });
}

at::Tensor weak_quadratic_cost_forward(const at::Tensor& x_, const at::Tensor& y_, double gamma,
                                       double scale) {
  check_weak(x_, y_);
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const int64_t B = x.size(0), Z = y.size(1), d = x.size(1);
  at::Tensor out = at::empty({B}, x.options());
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "weak_quadratic_cost", [&] {
    forward_impl<scalar_t>(x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(),
                           out.mutable_data_ptr<scalar_t>(), B, Z, d, gamma, scale);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> weak_quadratic_cost_backward(const at::Tensor& grad_, const at::Tensor& x_,
                                                                const at::Tensor& y_, double gamma,
                                                                double scale) {
  check_weak(x_, y_);
  check_sample_grad(grad_, x_.size(0));
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const at::Tensor grad = grad_.to(at::kDouble).contiguous();
  const int64_t B = x.size(0), Z = y.size(1), d = x.size(1);
  at::Tensor gx = empty_output_like(x), gy = empty_output_like(y);
  if (x.numel() == 0) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "weak_quadratic_cost_backward",
                                  [&] {
    backward_impl<scalar_t>(grad.const_data_ptr<double>(), x.const_data_ptr<scalar_t>(),
                            y.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(),
                            gy.mutable_data_ptr<scalar_t>(), B, Z, d, gamma, scale);
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("weak_quadratic_cost", &weak_quadratic_cost_forward);
  m.impl("_weak_quadratic_cost_backward", &weak_quadratic_cost_backward);
}

}  // namespace fastot::cpu
