// Per-element math of the fastot ops, shared by the C++ CPU kernels and the CUDA
// kernels so that the CPU tests exercise exactly the math the GPU runs (the Psi* kinds
// are in psi.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FASTOT_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
// Always inlined, so that the SIMD loops calling these see straight-line code.
#define FASTOT_HD inline __attribute__((always_inline))
#else
#define FASTOT_HD inline
#endif

// Device code has float overloads of the math functions in the global namespace; host code
// has them in std:: only (::expm1 on a float would silently compute in double, several times slower).
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define FASTOT_MATH(fn) ::fn
#else
#define FASTOT_MATH(fn) std::fn
#endif

namespace fastot {

constexpr double kLog2 = 0.69314718055994530942;

// The float math below has no branches and no library calls (selects, FMAs, bit casts), so the
// CPU loops vectorise, and the GPU runs the same arithmetic; double uses the C library. The CPU
// build passes -fno-trapping-math (FP exception flags are never read), which lets the compiler
// turn the selects into vector blends.

FASTOT_HD float float_from_bits(int32_t i) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return __int_as_float(i);
#else
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
#endif
}

// e^x and e^x - 1. Float: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite), e^r - 1 by its degree-8
// Taylor polynomial (truncation below 1e-9 relative), e^x = 2^n e^r with 2^n built from two
// halves so that denormal results and the overflow to inf come out right; e^x - 1 =
// 2^n (e^r - 1) + (2^n - 1) keeps full relative accuracy near 0. Within 2 ulp of the C library.
template <typename T>
FASTOT_HD void exp_and_expm1(T x, T* e, T* em1) {
  if constexpr (std::is_same_v<T, float>) {
    float xc = x > -104.0f ? x : -104.0f;  // also maps NaN to a finite value (restored below)
    xc = xc < 100.0f ? xc : 100.0f;
    constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float n = (xc * 1.44269504088896341f + kRound) - kRound;
    const float r = (xc - n * 0.693145751953125f) - n * 1.42860676533018704e-06f;
    const float q =
        r + r * r *
                (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
                                                                                r * (1.0f / 5040 +
                                                                                     r * (1.0f / 40320)))))));
    const int32_t ni = static_cast<int32_t>(n), half = ni >> 1;
    const float s1 = float_from_bits((half + 127) << 23), s2 = float_from_bits((ni - half + 127) << 23);
    const float ex = ((q + 1.0f) * s1) * s2;
    const float s = s1 * s2;  // exact and finite where it is used: |n| <= 24
    const float near = q * s + (s - 1.0f), far = ex - 1.0f;
    const float ex_m1 = n == 0.0f ? q : (n >= -24.0f && n <= 24.0f ? near : far);
    *e = x == x ? ex : x;
    *em1 = x == x ? ex_m1 : x;
  } else {
    *e = FASTOT_MATH(exp)(x);
    *em1 = FASTOT_MATH(expm1)(x);
  }
}

// log(1 + u) for u in [0, 1]. Float: with f = u (or (u - 1) / 2 past sqrt(2) - 1, adding log 2),
// log(1 + f) = 2 atanh(f / (2 + f)) by its odd series to z^11 (truncation below 1e-10 relative).
template <typename T>
FASTOT_HD T log1p_unit(T u) {
  if constexpr (std::is_same_v<T, float>) {
    const bool big = u > 0.41421356f;
    const float f_big = 0.5f * (u - 1.0f);
    const float f = big ? f_big : u;
    // 2z = f w with w = 2 / (2 + f): multiplying f (not halving it first) keeps the smallest
    // denormals, whose log1p is themselves.
    const float w = 2.0f / (2.0f + f), z = 0.5f * f * w, z2 = z * z;
    const float series =
        f * w * (1.0f + z2 * (1.0f / 3 + z2 * (1.0f / 5 + z2 * (1.0f / 7 + z2 * (1.0f / 9 + z2 * (1.0f / 11))))));
    return (big ? static_cast<float>(kLog2) : 0.0f) + series;
  } else {
    return FASTOT_MATH(log1p)(u);
  }
}

// log(1 + e^s) and its derivative 1 / (1 + e^{-s}) from one exponential, without overflow:
// log(1 + e^s) = max(s, 0) + log1p(e^{-|s|}).
template <typename T>
FASTOT_HD void softplus_and_sigmoid(T s, T* softplus, T* sigmoid) {
  T e, em1;
  exp_and_expm1(-FASTOT_MATH(fabs)(s), &e, &em1);
  *softplus = (s > T(0) ? s : T(0)) + log1p_unit(e);
  *sigmoid = (s >= T(0) ? T(1) : e) / (T(1) + e);
}

// 1 / n with the convention that the gradient of a norm at 0 is 0.
template <typename T>
FASTOT_HD T inv_norm_or_zero(T n) {
  return n > T(0) ? T(1) / n : T(0);
}

// Index of the pair (i, j), i < j, among the Z (Z - 1) / 2 pairs in row-major order.
FASTOT_HD int64_t pair_index(int64_t i, int64_t j, int64_t Z) {
  return i * (2 * Z - i - 1) / 2 + (j - i - 1);
}

}  // namespace fastot
