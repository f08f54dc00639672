"""fastot: fused optimal-transport ops, algorithms and trainers for OT generative modeling."""

from fastot.ops import (
    available,
    energy_kernel_cost,
    psi_star,
    quadratic_cost,
    r1_penalty,
    r1_regularizer,
    semi_dual_loss,
    use_backend,
    weak_quadratic_cost,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
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
