// The schemas of fastot::quadratic_cost: c_b = scale * ||x_b - y_b||^2.
// Kernels: cpu/quadratic_cost.cpp, cuda/quadratic_cost.cu;
// fake kernel and autograd: fastot/ops/quadratic_cost.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(fastot, m) {
  // x, y: [B, d] -> [B]
  m.def("quadratic_cost(Tensor x, Tensor y, float scale) -> Tensor");
  // d/dx of sum_b grad_b * cost_b: 2 * scale * grad_b * (x - y), [B, d]. Call with (y, x) for d/dy.
  m.def("_quadratic_cost_backward(Tensor grad, Tensor x, Tensor y, float scale) -> Tensor");
}
