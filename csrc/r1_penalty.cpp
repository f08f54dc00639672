// The schemas of fastot::r1_penalty: (weight / 2) * mean_b ||grad_b||^2.
// Kernels: cpu/r1_penalty.cpp, cuda/r1_penalty.cu;
// fake kernel and autograd: fastot/ops/r1_penalty.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(fastot, m) {
  // grad: [B, d] -> []
  m.def("r1_penalty(Tensor grad, float weight) -> Tensor");
  // d/dgrad of grad_out * r1_penalty(grad): weight / B * grad_out * grad, [B, d].
  m.def("_r1_penalty_backward(Tensor grad_out, Tensor grad, float weight) -> Tensor");
  // CPU only: r1_penalty(grad) and its gradient for grad_out = 1, weight / B * grad, in one pass.
  m.def("_r1_penalty_and_grad(Tensor grad, float weight) -> (Tensor, Tensor)");
  // CPU only: turns _r1_penalty_and_grad's gradient in place into _r1_penalty_backward's for grad_out.
  m.def("_r1_penalty_grad_for_(Tensor(a!) d_grad, Tensor grad_out, Tensor grad, float weight) -> ()");
}
