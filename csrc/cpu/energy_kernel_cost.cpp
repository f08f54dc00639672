#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../common/checks.h"
#include "loops.h"
#include "output_cache.h"

namespace fastot::cpu {
namespace {

// norms[b] = (||x - y_0||, ..., ||x - y_{Z-1}||, ||y_i - y_j|| for i < j), squared
// distances accumulated from differences (sq_diff_sum_fine).
std::tuple<at::Tensor, at::Tensor> energy_kernel_cost_forward(const at::Tensor& x_, const at::Tensor& y_,
                                                              double gamma, double scale) {
  check_weak(x_, y_);
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const int64_t B = x.size(0), Z = y.size(1), d = x.size(1), P = Z * (Z - 1) / 2, K = Z + P;
  const auto norm_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({B}, x.options());
  at::Tensor norms = at::empty({B, K}, x.options().dtype(norm_dtype));
  if (B == 0) return {out, norms};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "energy_kernel_cost", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    const auto sq = RowChunks(B, d).reduce(K, [&](int64_t b, int64_t j0, int64_t j1, double* a) {
      const scalar_t* xb = xp + b * d;
      const scalar_t* yb = yp + b * Z * d;
      // Tiles keep the Z + 1 rows of a tile in cache across the passes; each row is compared
      // with its later partners four at a time (x with every y_w: k = w; y_i with y_w, w > i:
      // k = Z + pair index).
      for (int64_t t0 = j0; t0 < j1; t0 += kTile) {
        const int64_t n = std::min(j1, t0 + kTile) - t0;
        auto y_row = [&](int64_t w) { return yb + w * d + t0; };
        for (int64_t left = -1; left < Z; ++left) {  // -1: x, else y_left
          const scalar_t* a_row = left < 0 ? xb + t0 : y_row(left);
          auto k_of = [&](int64_t w) { return left < 0 ? w : Z + pair_index(left, w, Z); };
          int64_t w = left + 1;
          for (; w + 4 <= Z; w += 4) {
            double s4[4] = {0.0, 0.0, 0.0, 0.0};
            sq_diff_sums_fine4(a_row, y_row(w), y_row(w + 1), y_row(w + 2), y_row(w + 3), n, s4);
            for (int64_t q = 0; q < 4; ++q) a[k_of(w + q)] += s4[q];
          }
          for (; w < Z; ++w) a[k_of(w)] += sq_diff_sum_fine(a_row, y_row(w), n);
        }
      }
    });
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    acc* np = norms.mutable_data_ptr<acc>();
    for (int64_t b = 0; b < B; ++b) {
      double transport = 0.0, spread = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double n = std::sqrt(sq[b * K + k]);
        np[b * K + k] = acc(n);
        (k < Z ? transport : spread) += n;
      }
      // sum over z != z' counts every pair twice.
      const double cost = 0.5 * transport / Z - 0.25 * gamma * (2.0 * spread) / double(Z * (Z - 1));
      op[b] = scalar_t(scale * cost);
    }
  });
  return {out, norms};
}

template <typename scalar_t>
void backward_impl(const double* gp, const double* np, const scalar_t* xp, const scalar_t* yp,
                   scalar_t* gxp, scalar_t* gyp, int64_t B, int64_t Z, int64_t d, double gamma, double scale) {
  const int64_t K = Z + Z * (Z - 1) / 2;
  using acc = acc_t<scalar_t>;
  RowChunks(B, d).run([&](int64_t b, int64_t, int64_t j0, int64_t j1) {
    std::vector<acc> coef(K);
    const double gs = gp[b] * scale;
    for (int64_t k = 0; k < K; ++k) {
      const double c = k < Z ? gs / (2.0 * Z) : gs * gamma / (2.0 * Z * (Z - 1));
      coef[k] = acc(c * inv_norm_or_zero(np[b * K + k]));
    }
    const scalar_t* xb = xp + b * d;
    const scalar_t* yb = yp + b * Z * d;
    const bool done = with_small_z(Z, [&](auto z) {
      energy_grad_columns<decltype(z)::value>(gxp + b * d + j0, gyp + b * Z * d + j0, xb + j0, yb + j0, d,
                                              coef.data(), j1 - j0);
    });
    if (done) return;
    // Larger Z: float / double gradients accumulate in the output rows themselves; half / bfloat16
    // ones in a float tile that is rounded once at the end. Short tiles keep the Z + 1
    // gradient rows and the Z input rows of a tile in L1 across the Z + P passes.
    constexpr bool in_place = std::is_same_v<acc, scalar_t>;
    constexpr int64_t tile = 256;
    std::vector<acc> scratch(in_place ? 0 : static_cast<size_t>((Z + 1) * tile));
    for (int64_t t0 = j0; t0 < j1; t0 += tile) {
      const int64_t n = std::min(j1, t0 + tile) - t0;
      acc* gx = scratch.data();
      auto gy_row = [&](int64_t z) -> acc* {
        if constexpr (in_place) {
          return gyp + (b * Z + z) * d + t0;
        } else {
          return scratch.data() + (z + 1) * tile;
        }
      };
      if constexpr (in_place) gx = gxp + b * d + t0;
      std::fill(gx, gx + n, acc(0));
      for (int64_t z = 0; z < Z; ++z) energy_tile_transport(gy_row(z), gx, xb + t0, yb + z * d + t0, coef[z], n);
      for (int64_t i = 0, p = Z; i < Z; ++i)
        for (int64_t w = i + 1; w < Z; ++w, ++p)
          energy_tile_pair(gy_row(i), gy_row(w), yb + i * d + t0, yb + w * d + t0, coef[p], n);
      if constexpr (!in_place) {
        store(gxp + b * d + t0, gx, n);
        for (int64_t z = 0; z < Z; ++z) store(gyp + (b * Z + z) * d + t0, gy_row(z), n);
      }
    }
  });
}

// d/dy_z = a_z (y_z - x) - sum_{pairs (z, w)} b_p (y_z - y_w),  d/dx = sum_z a_z (x - y_z),
// a_z = g s / (2 Z ||x - y_z||),  b_p = g s gamma / (2 Z (Z - 1) ||y_z - y_w||), 0 where a norm is 0.
std::tuple<at::Tensor, at::Tensor> energy_kernel_cost_backward(const at::Tensor& grad_, const at::Tensor& x_,
                                                               const at::Tensor& y_, const at::Tensor& norms_,
                                                               double gamma, double scale) {
  check_weak(x_, y_);
  const int64_t B = x_.size(0), Z = y_.size(1), d = x_.size(1), P = Z * (Z - 1) / 2, K = Z + P;
  check_sample_grad(grad_, B);
  check_energy_norms(norms_, B, K);
  const at::Tensor x = x_.contiguous(), y = y_.contiguous();
  const at::Tensor grad = grad_.to(at::kDouble).contiguous();
  const at::Tensor norms = norms_.to(at::kDouble).contiguous();
  at::Tensor gx = empty_output_like(x), gy = empty_output_like(y);
  if (x.numel() == 0) return {gx, gy};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "energy_kernel_cost_backward",
                                  [&] {
    backward_impl<scalar_t>(grad.const_data_ptr<double>(), norms.const_data_ptr<double>(),
                            x.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(),
                            gx.mutable_data_ptr<scalar_t>(), gy.mutable_data_ptr<scalar_t>(), B, Z, d, gamma,
                            scale);
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastot, CPU, m) {
  m.impl("energy_kernel_cost", &energy_kernel_cost_forward);
  m.impl("_energy_kernel_cost_backward", &energy_kernel_cost_backward);
}

}  // namespace fastot::cpu
