// The fastot op library. Each op's schemas are a fragment of it in csrc/<op>.cpp; the kernels
// register themselves per dispatch key in csrc/cpu/<op>.cpp and csrc/cuda/<op>.cu.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// `import fastot._C` only has to load this shared object so that the static
// registrars run; the module itself exposes nothing to Python.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

// The namespace's one TORCH_LIBRARY block: every schema is a fragment (csrc/<op>.cpp).
TORCH_LIBRARY(fastot, m) {}
