// Argument checks shared by the CPU and CUDA entry points. The Python layer checks
// first with the same wording; these keep direct torch.ops calls just as safe.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "math.h"

namespace fastot {

inline void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), name,
                   " must have a floating dtype (float16, bfloat16, float32, float64), got ",
                   t.scalar_type());
}

inline void check_like(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name) {
  TORCH_CHECK_VALUE(a.device() == b.device(), a_name, " and ", b_name, " must be on the same device, got ",
              a.device(), " and ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), a_name, " and ", b_name,
                   " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

inline void check_rows(const at::Tensor& t, const char* name) {
  check_float(t, name);
  TORCH_CHECK_VALUE(t.dim() == 2, name, " must have shape [B, d], got ", t.sizes());
}

// x: [B, d], y: [B, Z, d] with Z >= 2.
inline void check_weak(const at::Tensor& x, const at::Tensor& y) {
  check_rows(x, "x");
  check_like(x, "x", y, "y");
  TORCH_CHECK_VALUE(y.dim() == 3 && y.size(0) == x.size(0) && y.size(2) == x.size(1),
              "y must have shape [B, Z, d] matching x [B, d], got x ", x.sizes(), " and y ", y.sizes());
  TORCH_CHECK_VALUE(y.size(1) >= 2, "y must hold Z >= 2 samples per x, got Z = ", y.size(1));
}

inline PsiKind parse_psi_kind(const std::string& kind, const char* name) {
  if (kind == "identity") return PsiKind::Identity;
  if (kind == "kl") return PsiKind::KL;
  if (kind == "chi2") return PsiKind::Chi2;
  if (kind == "softplus") return PsiKind::Softplus;
  if (kind == "softplus_unscaled") return PsiKind::SoftplusUnscaled;
  TORCH_CHECK_VALUE(false, name, " must be one of identity, kl, chi2, softplus, softplus_unscaled; got '",
                    kind, "'");
}

}  // namespace fastot
