// The schemas of fastot::energy_kernel_cost: KNOT's gamma-weak energy-kernel cost from Z samples per input.
// Kernels: cpu/energy_kernel_cost.cpp, cuda/energy_kernel_cost.cu;
// fake kernel and autograd: fastot/ops/energy_kernel_cost.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(fastot, m) {
  // -> (cost [B], norms [B, Z + Z (Z - 1) / 2]): ||x - y_z|| then ||y_i - y_j||, i < j.
  m.def("energy_kernel_cost(Tensor x, Tensor y, float gamma, float scale) -> (Tensor, Tensor)");
  m.def(
      "_energy_kernel_cost_backward(Tensor grad, Tensor x, Tensor y, Tensor norms, float gamma, "
      "float scale) -> (Tensor, Tensor)");
}
