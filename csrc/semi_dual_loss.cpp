// The schemas of fastot::semi_dual_loss: the UOTM potential loss
// mean_b Psi1*(v_fake_b - cost_b) + mean_m Psi2*(-v_real_m).
// Kernels: cpu/semi_dual_loss.cpp, cuda/semi_dual_loss.cu;
// fake kernel and autograd: fastot/ops/semi_dual_loss.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(fastot, m) {
  // cost, v_fake: [B]; v_real: [M] -> (loss [], d loss / d v_fake [B], d loss / d v_real [M]).
  m.def(
      "semi_dual_loss(Tensor cost, Tensor v_fake, Tensor v_real, str psi_source, str psi_target, "
      "float alpha) -> (Tensor, Tensor, Tensor)");
}
