// Argument checks shared by the CPU and CUDA entry points. The Python layer checks
// first with the same wording; these keep direct torch.ops calls just as safe.
#pragma once

#include <ATen/ATen.h>

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

// quadratic_cost: x and y [B, d], alike.
inline void check_pair(const at::Tensor& x, const at::Tensor& y) {
  check_rows(x, "x");
  check_like(x, "x", y, "y");
  TORCH_CHECK_VALUE(x.sizes() == y.sizes(), "x and y must have the same shape, got ", x.sizes(), " and ",
                    y.sizes());
}

// The incoming gradient of a per-sample cost.
inline void check_sample_grad(const at::Tensor& grad, int64_t B) {
  TORCH_CHECK_VALUE(grad.dim() == 1 && grad.size(0) == B, "grad must have shape [B], got ", grad.sizes());
}

inline void check_alpha(double alpha) { TORCH_CHECK_VALUE(alpha > 0, "alpha must be > 0, got ", alpha); }

inline void check_semi_dual(const at::Tensor& cost, const at::Tensor& fake, const at::Tensor& real,
                            double alpha) {
  check_float(cost, "cost");
  check_like(cost, "cost", fake, "v_fake");
  check_like(cost, "cost", real, "v_real");
  TORCH_CHECK_VALUE(cost.dim() == 1 && fake.dim() == 1 && real.dim() == 1 && cost.size(0) == fake.size(0),
                    "cost and v_fake must have shape [B] and v_real [M], got ", cost.sizes(), ", ",
                    fake.sizes(), " and ", real.sizes());
  TORCH_CHECK_VALUE(fake.size(0) > 0 && real.size(0) > 0,
                    "v_fake and v_real must be non-empty: a mean over no samples is undefined");
  check_alpha(alpha);
}

inline void check_r1(const at::Tensor& grad, double weight) {
  check_rows(grad, "grad");
  TORCH_CHECK_VALUE(grad.size(0) > 0, "grad is an empty batch; a mean over no samples is undefined");
  TORCH_CHECK_VALUE(weight >= 0, "weight must be >= 0, got ", weight);
}

inline void check_r1_backward(const at::Tensor& grad_out, const at::Tensor& grad) {
  check_rows(grad, "grad");
  TORCH_CHECK_VALUE(grad_out.numel() == 1, "grad_out must hold one value, got ", grad_out.sizes());
}

// energy_kernel_cost's saved norms: Z distances to x, then the Z (Z - 1) / 2 pairwise ones.
inline void check_energy_norms(const at::Tensor& norms, int64_t B, int64_t K) {
  TORCH_CHECK_VALUE(norms.dim() == 2 && norms.size(0) == B && norms.size(1) == K,
                    "norms must have shape [B, Z + Z (Z - 1) / 2], got ", norms.sizes());
}

}  // namespace fastot
