// The fastot op library: every schema lives here, the kernels register
// themselves per dispatch key in csrc/cpu/*.cpp and csrc/cuda/*.cu.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// `import fastot._C` only has to load this shared object so that the static
// registrars below run; the module itself exposes nothing to Python.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(fastot, m) {
  // x, y: [B, d] -> [B]
  m.def("quadratic_cost(Tensor x, Tensor y, float scale) -> Tensor");
  // d/dx of sum_b grad_b * cost_b: 2 * scale * grad_b * (x - y), [B, d]. Call with (y, x) for d/dy.
  m.def("_quadratic_cost_backward(Tensor grad, Tensor x, Tensor y, float scale) -> Tensor");
  // Elementwise alpha * Psi*(t / alpha) and its derivative.
  m.def("psi_star(Tensor t, str kind, float alpha) -> (Tensor, Tensor)");
  // cost, v_fake: [B]; v_real: [M] -> (loss [], d loss / d v_fake [B], d loss / d v_real [M]).
  m.def(
      "semi_dual_loss(Tensor cost, Tensor v_fake, Tensor v_real, str psi_source, str psi_target, "
      "float alpha) -> (Tensor, Tensor, Tensor)");
  // grad: [B, d] -> []
  m.def("r1_penalty(Tensor grad, float weight) -> Tensor");
  // d/dgrad of grad_out * r1_penalty(grad): weight / B * grad_out * grad, [B, d].
  m.def("_r1_penalty_backward(Tensor grad_out, Tensor grad, float weight) -> Tensor");
  // x: [B, d], y: [B, Z, d] -> [B]
  m.def("weak_quadratic_cost(Tensor x, Tensor y, float gamma, float scale) -> Tensor");
  m.def(
      "_weak_quadratic_cost_backward(Tensor grad, Tensor x, Tensor y, float gamma, float scale) "
      "-> (Tensor, Tensor)");
  // -> (cost [B], norms [B, Z + Z (Z - 1) / 2]): ||x - y_z|| then ||y_i - y_j||, i < j.
  m.def("energy_kernel_cost(Tensor x, Tensor y, float gamma, float scale) -> (Tensor, Tensor)");
  m.def(
      "_energy_kernel_cost_backward(Tensor grad, Tensor x, Tensor y, Tensor norms, float gamma, "
      "float scale) -> (Tensor, Tensor)");
}
