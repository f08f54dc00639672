// The Psi* kinds of psi_star and semi_dual_loss: their list, their per-element math (shared by
// the CPU and CUDA kernels), and the host-side parsing and dispatch of a kind.
#pragma once

#include <c10/util/Exception.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "math.h"

// The kinds, in the order of fastot.ops.psi_star.PSI_KINDS (the Triton kernels number them
// alike): X(enumerator, name in Python). Everything below that lists the kinds expands this.
#define FASTOT_PSI_KINDS(X)               \
  X(Identity, "identity")                 \
  X(KL, "kl")                             \
  X(Chi2, "chi2")                         \
  X(Softplus, "softplus")                 \
  X(SoftplusUnscaled, "softplus_unscaled")

namespace fastot {

enum class PsiKind : int32_t {
#define FASTOT_PSI_ENUMERATOR(kind, name) kind,
  FASTOT_PSI_KINDS(FASTOT_PSI_ENUMERATOR)
#undef FASTOT_PSI_ENUMERATOR
};

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
    case PsiKind::KL: {
      T e, em1;
      exp_and_expm1(s, &e, &em1);
      *value = alpha * em1;
      *grad = e;
      return;
    }
    case PsiKind::Chi2: {
      const T c = s < T(-2) ? T(-2) : s;  // max(s, -2), keeping NaN
      const T grad_inside = T(0.5) * s + T(1);
      *value = alpha * (T(0.25) * c * c + c);
      *grad = s >= T(-2) ? grad_inside : T(0);
      return;
    }
    case PsiKind::Softplus: {
      T sp, sg;
      softplus_and_sigmoid(s, &sp, &sg);
      *value = alpha * (T(2) * sp - T(2 * kLog2));
      *grad = T(2) * sg;
      return;
    }
    case PsiKind::SoftplusUnscaled: {
      T sp, sg;
      softplus_and_sigmoid(s, &sp, &sg);
      *value = alpha * sp;
      *grad = sg;
      return;
    }
  }
  // NaN if a caller ever passes an unchecked kind: never a silent plausible number.
  *value = *grad = t * T(NAN);
}

// The kind named `kind` (a user-facing argument called `name`).
inline PsiKind parse_psi_kind(const std::string& kind, const char* name) {
#define FASTOT_PSI_PARSE(k, n) \
  if (kind == n) return PsiKind::k;
  FASTOT_PSI_KINDS(FASTOT_PSI_PARSE)
#undef FASTOT_PSI_PARSE
  std::string names;
#define FASTOT_PSI_NAME(k, n) names += names.empty() ? n : ", " n;
  FASTOT_PSI_KINDS(FASTOT_PSI_NAME)
#undef FASTOT_PSI_NAME
  TORCH_CHECK_VALUE(false, name, " must be one of ", names, "; got '", kind, "'");
}

template <PsiKind K>
using PsiKindConstant = std::integral_constant<PsiKind, K>;

// Calls f(PsiKindConstant<kind>{}), so that kernels get the kind as a template argument and the
// per-element switch of psi_star_value_grad folds away.
template <typename F>
void with_psi_kind(PsiKind kind, F&& f) {
  switch (kind) {
#define FASTOT_PSI_CASE(k, n) \
  case PsiKind::k:            \
    return f(PsiKindConstant<PsiKind::k>{});
    FASTOT_PSI_KINDS(FASTOT_PSI_CASE)
#undef FASTOT_PSI_CASE
  }
  TORCH_CHECK(false, "unknown Psi* kind ", static_cast<int>(kind));
}

}  // namespace fastot
