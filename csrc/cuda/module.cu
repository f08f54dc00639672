// fastot._C_cuda: `import fastot._C_cuda` loads this shared object so that the static
// registrars of csrc/cuda/*.cu add the CUDA kernels to the fastot ops (whose schemas
// fastot._C defines, so it must be imported first); the module itself exposes nothing.
#include <Python.h>

PyMODINIT_FUNC PyInit__C_cuda(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C_cuda", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
