// The schemas of fastot::psi_star: alpha * Psi*(t / alpha) for the kinds of common/psi.h.
// Kernels: cpu/psi_star.cpp, cuda/psi_star.cu;
// fake kernel and autograd: fastot/ops/psi_star.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(fastot, m) {
  // Elementwise alpha * Psi*(t / alpha) and its derivative.
  m.def("psi_star(Tensor t, str kind, float alpha) -> (Tensor, Tensor)");
}
