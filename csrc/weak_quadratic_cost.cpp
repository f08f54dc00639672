// The schemas of fastot::weak_quadratic_cost: NOT's gamma-weak quadratic cost from Z samples per input.
// Kernels: cpu/weak_quadratic_cost.cpp, cuda/weak_quadratic_cost.cu;
// fake kernel and autograd: fastot/ops/weak_quadratic_cost.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(fastot, m) {
  // x: [B, d], y: [B, Z, d] -> [B]
  m.def("weak_quadratic_cost(Tensor x, Tensor y, float gamma, float scale) -> Tensor");
  m.def(
      "_weak_quadratic_cost_backward(Tensor grad, Tensor x, Tensor y, float gamma, float scale) "
      "-> (Tensor, Tensor)");
}
