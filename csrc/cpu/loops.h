// Vectorisable inner loops over one row segment, the only hot code of the CPU kernels.
//
// Each loop is compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and the baseline, and the
// loader picks the best one for the running CPU (GCC/Clang target_clones), so one wheel
// is fast everywhere. Sums run in the accumulation type (float for half / bfloat16 /
// float) within a tile and are added in double across tiles, which keeps d = 3 * 256 * 256
// rows accurate without slowing the SIMD loop.
#pragma once

#include <ATen/OpMathType.h>

#include <algorithm>
#include <cstdint>

#include "../common/math.h"
#include "../common/psi.h"
#include "convert.h"
#include "row_chunks.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FASTOT_NO_CLONES)
#define FASTOT_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FASTOT_SIMD_CLONES
#endif

namespace fastot::cpu {

template <typename T>
using acc_t = at::opmath_type<T>;

// Partial sums per tile: one vector accumulator would make every add wait for the previous
// one (the loop then runs at the add latency, ~1.5x slower than memory on an AVX2 core).
// 256 bytes of partials: eight AVX2 or four AVX-512 registers.
template <typename T>
constexpr int64_t kPartials = 256 / sizeof(acc_t<T>);

// sum_j (a_j - b_j)^2 over [0, n), n <= kTile summed in acc_t.
template <typename T>
FASTOT_SIMD_CLONES acc_t<T> tile_sq_diff_sum(const T* a, const T* b, int64_t n) {
  acc_t<T> s = 0;
  if (n < kPartials<T>) {  // a toy row (d = 2): zeroing and adding the partials would cost more
    for (int64_t j = 0; j < n; ++j) {
      const acc_t<T> diff = load_acc(a[j]) - load_acc(b[j]);
      s += diff * diff;
    }
    return s;
  }
  acc_t<T> part[kPartials<T>] = {};
  int64_t j = 0;
  for (; j + kPartials<T> <= n; j += kPartials<T>) {
#pragma omp simd
    for (int64_t k = 0; k < kPartials<T>; ++k) {
      const acc_t<T> diff = load_acc(a[j + k]) - load_acc(b[j + k]);
      part[k] += diff * diff;
    }
  }
  for (; j < n; ++j) {
    const acc_t<T> diff = load_acc(a[j]) - load_acc(b[j]);
    s += diff * diff;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < kPartials<T>; ++k) s += part[k];
  return s;
}

// sum_j a_j^2 over [0, n), n <= kTile summed in acc_t; with kScale, also out_j = coef * a_j in the
// same pass (the sum is the same either way: the stores do not touch the partials).
template <typename T, bool kScale = false>
FASTOT_SIMD_CLONES acc_t<T> tile_sq_sum(const T* a, int64_t n, T* out = nullptr, acc_t<T> coef = 0) {
  acc_t<T> s = 0;
  if (n < kPartials<T>) {  // a toy row, as in tile_sq_diff_sum
    for (int64_t j = 0; j < n; ++j) {
      const acc_t<T> v = load_acc(a[j]);
      s += v * v;
      if constexpr (kScale) out[j] = store_as<T>(coef * v);
    }
    return s;
  }
  acc_t<T> part[kPartials<T>] = {};
  int64_t j = 0;
  for (; j + kPartials<T> <= n; j += kPartials<T>) {
#pragma omp simd
    for (int64_t k = 0; k < kPartials<T>; ++k) {
      const acc_t<T> v = load_acc(a[j + k]);
      part[k] += v * v;
      if constexpr (kScale) out[j + k] = store_as<T>(coef * v);
    }
  }
  for (; j < n; ++j) {
    const acc_t<T> v = load_acc(a[j]);
    s += v * v;
    if constexpr (kScale) out[j] = store_as<T>(coef * v);
  }
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < kPartials<T>; ++k) s += part[k];
  return s;
}

// sum_j (a_j - b_j)^2 over [0, n) in tiles added in double.
template <typename T>
inline double sq_diff_sum(const T* a, const T* b, int64_t n) {
  double total = 0.0;
  for (int64_t j0 = 0; j0 < n; j0 += kTile) total += tile_sq_diff_sum(a + j0, b + j0, std::min(kTile, n - j0));
  return total;
}

// sum_j a_j^2 over [0, n) in tiles added in double.
template <typename T>
inline double sq_sum(const T* a, int64_t n) {
  double total = 0.0;
  for (int64_t j0 = 0; j0 < n; j0 += kTile) total += tile_sq_sum(a + j0, std::min(kTile, n - j0));
  return total;
}

// sq_sum(a, n), and out_j = coef * a_j in the same pass over a.
template <typename T>
inline double sq_sum_and_scaled(T* out, const T* a, acc_t<T> coef, int64_t n) {
  double total = 0.0;
  for (int64_t j0 = 0; j0 < n; j0 += kTile)
    total += tile_sq_sum<T, true>(a + j0, std::min(kTile, n - j0), out + j0, coef);
  return total;
}

// sum_j (a_j - b_j)^2 for distances between nearby samples, where one float sum over a
// long row would lose digits: float partial sums over blocks of 128 (8 terms per AVX-512
// lane) are added in double, which keeps the relative error near 1e-8 at full SIMD width.
template <typename T>
FASTOT_SIMD_CLONES double sq_diff_sum_fine(const T* a, const T* b, int64_t n) {
  constexpr int64_t kBlock = 128;
  double total = 0.0;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t j1 = std::min(n, j0 + kBlock);
    acc_t<T> s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = j0; j < j1; ++j) {
      const acc_t<T> diff = load_acc(a[j]) - load_acc(b[j]);
      s += diff * diff;
    }
    total += static_cast<double>(s);
  }
  return total;
}

// sq_diff_sum_fine of a against four rows at once, added to out[0..3]: a is read once for the
// four sums, which are the same numbers sq_diff_sum_fine gives.
template <typename T>
FASTOT_SIMD_CLONES void sq_diff_sums_fine4(const T* a, const T* b0, const T* b1, const T* b2, const T* b3,
                                           int64_t n, double* out) {
  constexpr int64_t kBlock = 128;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t j1 = std::min(n, j0 + kBlock);
    acc_t<T> s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t j = j0; j < j1; ++j) {
      const acc_t<T> av = load_acc(a[j]);
      const acc_t<T> d0 = av - load_acc(b0[j]), d1 = av - load_acc(b1[j]);
      const acc_t<T> d2 = av - load_acc(b2[j]), d3 = av - load_acc(b3[j]);
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
    out[0] += static_cast<double>(s0);
    out[1] += static_cast<double>(s1);
    out[2] += static_cast<double>(s2);
    out[3] += static_cast<double>(s3);
  }
}

// out_j = coef * (a_j - b_j) over [0, n).
template <typename T>
FASTOT_SIMD_CLONES void scaled_diff(T* out, const T* a, const T* b, acc_t<T> coef, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = store_as<T>(coef * (load_acc(a[j]) - load_acc(b[j])));
}

// out_j = coef * a_j over [0, n).
template <typename T>
FASTOT_SIMD_CLONES void scaled(T* out, const T* a, acc_t<T> coef, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = store_as<T>(coef * load_acc(a[j]));
}

// acc_j += a_j over [0, n).
template <typename T>
FASTOT_SIMD_CLONES void accumulate(acc_t<T>* acc, const T* a, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) acc[j] += load_acc(a[j]);
}

// Weak quadratic cost, one sample z of a tile: adds sum (x - y)^2 and sum (y - mean)^2.
template <typename T>
FASTOT_SIMD_CLONES void weak_tile_sums(const T* x, const T* y, const acc_t<T>* mean, int64_t n,
                                       acc_t<T>* transport, acc_t<T>* spread) {
  acc_t<T> t = 0, s = 0;
#pragma omp simd reduction(+ : t, s)
  for (int64_t j = 0; j < n; ++j) {
    const acc_t<T> v = load_acc(y[j]);
    const acc_t<T> dx = load_acc(x[j]) - v;
    const acc_t<T> dm = v - mean[j];
    t += dx * dx;
    s += dm * dm;
  }
  *transport += t;
  *spread += s;
}

// Weak quadratic cost gradient of one sample: c_t (y - x) - c_v (y - mean).
template <typename T>
FASTOT_SIMD_CLONES void weak_tile_grad(T* out, const T* x, const T* y, const acc_t<T>* mean, acc_t<T> c_t,
                                       acc_t<T> c_v, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const acc_t<T> v = load_acc(y[j]);
    out[j] = store_as<T>(c_t * (v - load_acc(x[j])) - c_v * (v - mean[j]));
  }
}

// Energy cost gradient, transport term of one sample: g_z = a (y - x), g_x -= a (y - x).
template <typename T>
FASTOT_SIMD_CLONES void energy_tile_transport(acc_t<T>* gz, acc_t<T>* gx, const T* x, const T* y, acc_t<T> a,
                                              int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const acc_t<T> t = a * (load_acc(y[j]) - load_acc(x[j]));
    gz[j] = t;
    gx[j] -= t;
  }
}

// Energy cost gradient, one pair (i, w): t = c (y_i - y_w); g_i -= t; g_w += t.
template <typename T>
FASTOT_SIMD_CLONES void energy_tile_pair(acc_t<T>* gi, acc_t<T>* gw, const T* yi, const T* yw, acc_t<T> c,
                                         int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const acc_t<T> t = c * (load_acc(yi[j]) - load_acc(yw[j]));
    gi[j] -= t;
    gw[j] += t;
  }
}

// Calls f(std::integral_constant<int, Z>{}) when Z is one the register
// (column) kernels below are compiled for; false otherwise.
template <typename F>
bool with_small_z(int64_t Z, F&& f) {
  switch (Z) {
    case 2: f(std::integral_constant<int, 2>{}); return true;
    case 3: f(std::integral_constant<int, 3>{}); return true;
    case 4: f(std::integral_constant<int, 4>{}); return true;
    case 5: f(std::integral_constant<int, 5>{}); return true;
    case 6: f(std::integral_constant<int, 6>{}); return true;
    case 7: f(std::integral_constant<int, 7>{}); return true;
    case 8: f(std::integral_constant<int, 8>{}); return true;
    default: return false;
  }
}

// The Z samples of column j (y[z * stride + j]) and their mean, returned by value so that the
// SIMD loops keep them in registers.
template <int Z, typename T>
struct Column {
  acc_t<T> y[Z];
  acc_t<T> mean;
};

template <int Z, typename T>
FASTOT_ALWAYS_INLINE Column<Z, T> load_column(const T* y, int64_t stride, int64_t j) {
  Column<Z, T> c{};
  acc_t<T> sum = 0;
#pragma GCC unroll 8
  for (int z = 0; z < Z; ++z) {
    c.y[z] = load_acc(y[z * stride + j]);
    sum += c.y[z];
  }
  c.mean = sum * (acc_t<T>(1) / acc_t<T>(Z));
  return c;
}

// Weak quadratic cost sums of one sample over columns [0, n), for a Z known at compile time:
// sum_z (x - y_z)^2 and sum_z (y_z - mean)^2, with the column mean in registers. Float sums over
// blocks of 128 columns are added in double into out2[0..1].
template <int Z, typename T>
FASTOT_SIMD_CLONES void weak_sums_columns(const T* x, const T* y, int64_t stride, int64_t n, double* out2) {
  constexpr int64_t kBlock = 128;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t j1 = std::min(n, j0 + kBlock);
    acc_t<T> t = 0, s = 0;
#pragma omp simd reduction(+ : t, s)
    for (int64_t j = j0; j < j1; ++j) {
      const acc_t<T> xv = load_acc(x[j]);
      const auto [yv, mean] = load_column<Z>(y, stride, j);
#pragma GCC unroll 8
      for (int z = 0; z < Z; ++z) {
        const acc_t<T> dx = xv - yv[z], dm = yv[z] - mean;
        t += dx * dx;
        s += dm * dm;
      }
    }
    out2[0] += static_cast<double>(t);
    out2[1] += static_cast<double>(s);
  }
}

// Weak quadratic cost gradient of one sample over columns [0, n), Z known at compile time:
// gx = g_s (x - mean), gy_z = c_t (y_z - x) - c_v (y_z - mean), each written once.
template <int Z, typename T>
FASTOT_SIMD_CLONES void weak_grad_columns(T* gx, T* gy, const T* x, const T* y, int64_t stride, acc_t<T> gs,
                                          acc_t<T> c_t, acc_t<T> c_v, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const acc_t<T> xv = load_acc(x[j]);
    const auto [yv, mean] = load_column<Z>(y, stride, j);
    gx[j] = store_as<T>(gs * (xv - mean));
#pragma GCC unroll 8
    for (int z = 0; z < Z; ++z) gy[z * stride + j] = store_as<T>(c_t * (yv[z] - xv) - c_v * (yv[z] - mean));
  }
}

// Energy cost gradient of one sample over columns [0, n), for a Z known at compile time: each
// column's x, Z samples and Z + 1 gradients stay in registers, so every input is read once and
// every gradient written once (the tile loops above read and write a gradient row per pair).
// coef holds the Z transport coefficients, then the pairs' in energy_tile_pair order.
template <int Z, typename T>
FASTOT_SIMD_CLONES void energy_grad_columns(T* gx, T* gy, const T* x, const T* y, int64_t stride,
                                            const acc_t<T>* coef, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const acc_t<T> xv = load_acc(x[j]);
    acc_t<T> yv[Z], g[Z], g_x = 0;
#pragma GCC unroll 8
    for (int z = 0; z < Z; ++z) {
      yv[z] = load_acc(y[z * stride + j]);
      g[z] = coef[z] * (yv[z] - xv);
      g_x -= g[z];
    }
    int p = Z;
#pragma GCC unroll 8
    for (int i = 0; i < Z; ++i) {
#pragma GCC unroll 8
      for (int w = i + 1; w < Z; ++w, ++p) {
        const acc_t<T> t = coef[p] * (yv[i] - yv[w]);
        g[i] -= t;
        g[w] += t;
      }
    }
    gx[j] = store_as<T>(g_x);
#pragma GCC unroll 8
    for (int z = 0; z < Z; ++z) gy[z * stride + j] = store_as<T>(g[z]);
  }
}

// out_j = T(a_j) over [0, n).
template <typename T>
FASTOT_SIMD_CLONES void store(T* out, const acc_t<T>* a, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = store_as<T>(a[j]);
}

// value_j, grad_j = alpha Psi*(t_j / alpha) and its derivative, over [0, n).
template <PsiKind K, typename T>
FASTOT_SIMD_CLONES void psi_star_values(const T* t, T* value, T* grad, acc_t<T> alpha, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    acc_t<T> v, g;
    psi_star_value_grad<acc_t<T>>(K, load_acc(t[j]), alpha, &v, &g);
    value[j] = store_as<T>(v);
    grad[j] = store_as<T>(g);
  }
}

// sum_j alpha Psi*(t_j / alpha) with t_j = sign * a_j - c_j (c_j = 0 without a cost), summed in
// double, and grad_j = grad_scale * Psi*'(t_j): one side of the semi-dual loss.
template <PsiKind K, bool kWithCost, typename T>
FASTOT_SIMD_CLONES double psi_star_sum(const T* a, const T* c, acc_t<T> sign, acc_t<T> alpha,
                                       acc_t<T> grad_scale, T* grad, int64_t n) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    acc_t<T> t = sign * load_acc(a[j]), v, g;
    if constexpr (kWithCost) t -= load_acc(c[j]);
    psi_star_value_grad<acc_t<T>>(K, t, alpha, &v, &g);
    sum += v;
    grad[j] = store_as<T>(grad_scale * g);
  }
  return sum;
}

}  // namespace fastot::cpu
