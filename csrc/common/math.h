// Per-element math of the fastot ops, shared by the C++ CPU kernels and the CUDA
// kernels so that the CPU tests exercise exactly the math the GPU runs.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FASTOT_HD __host__ __device__ __forceinline__
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

// Order matches fastot.ops._reference.PSI_KINDS.
enum class PsiKind : int32_t { Identity = 0, KL = 1, Chi2 = 2, Softplus = 3, SoftplusUnscaled = 4 };

constexpr double kLog2 = 0.69314718055994530942;

template <typename T>
FASTOT_HD T stable_softplus(T s) {
  // log(1 + e^s) without overflow: max(s, 0) + log1p(e^{-|s|}).
  return (s > T(0) ? s : T(0)) + FASTOT_MATH(log1p)(FASTOT_MATH(exp)(-FASTOT_MATH(fabs)(s)));
}

template <typename T>
FASTOT_HD T stable_sigmoid(T s) {
  if (s >= T(0)) return T(1) / (T(1) + FASTOT_MATH(exp)(-s));
  const T e = FASTOT_MATH(exp)(s);
  return e / (T(1) + e);
}

// alpha * Psi*(t / alpha) and its derivative d/dt, in the accumulation type T.
// kl overflows like exp: value and derivative become +inf for t / alpha > log(FLT_MAX)
// (about 88.7 in float), never NaN.
template <typename T>
FASTOT_HD void psi_star_value_grad(PsiKind kind, T t, T alpha, T* value, T* grad) {
  const T s = t / alpha;
  switch (kind) {
    case PsiKind::Identity:
      *value = t;
      *grad = T(1);
      return;
    case PsiKind::KL:
      *value = alpha * FASTOT_MATH(expm1)(s);
      *grad = FASTOT_MATH(exp)(s);
      return;
    case PsiKind::Chi2:
      if (s >= T(-2)) {
        *value = alpha * (T(0.25) * s * s + s);
        *grad = T(0.5) * s + T(1);
      } else {
        *value = -alpha;
        *grad = T(0);
      }
      return;
    case PsiKind::Softplus:
      *value = alpha * (T(2) * stable_softplus(s) - T(2 * kLog2));
      *grad = T(2) * stable_sigmoid(s);
      return;
    case PsiKind::SoftplusUnscaled:
      *value = alpha * stable_softplus(s);
      *grad = stable_sigmoid(s);
      return;
  }
  // NaN if a caller ever passes an unchecked kind: never a silent plausible number.
  *value = *grad = t * T(NAN);
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
