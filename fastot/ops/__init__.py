"""fastot's fused optimal-transport ops (public API).

One module per op holds all of it: the public function, its PyTorch reference, its fake kernel
and its autograd (shared by the C++, CUDA and Triton backends).
"""

from fastot.ops._backend import BACKENDS, available, use_backend
from fastot.ops.energy_kernel_cost import energy_kernel_cost
from fastot.ops.psi_star import psi_star
from fastot.ops.quadratic_cost import quadratic_cost
from fastot.ops.r1_penalty import r1_penalty, r1_regularizer
from fastot.ops.semi_dual_loss import semi_dual_loss
from fastot.ops.weak_quadratic_cost import weak_quadratic_cost

__all__ = [
    "BACKENDS",
    "available",
    "energy_kernel_cost",
    "psi_star",
    "quadratic_cost",
    "r1_penalty",
    "r1_regularizer",
    "semi_dual_loss",
    "use_backend",
    "weak_quadratic_cost",
]
