"""Triton kernels of fastot (installed as ``fastot.kernels``).

Each op is a ``torch.library.triton_op`` named ``fastot::<op>_triton`` with the schema of
the C++ op ``fastot::<op>``, so one set of autograd formulas serves both. Importing this
package raises ImportError when Triton is missing, and fastot falls back to its other
backends. The functions below take inputs that the public API has already validated and
flattened (``[B, d]`` rows, ``[B, Z, d]`` samples, ``[B]`` scores).
"""

from __future__ import annotations

import torch
import triton  # noqa: F401  (the ImportError by which fastot detects a missing Triton)
from torch import Tensor

from fastot.ops import _registry

# Importing the modules defines the fastot::<op>_triton ops.
from . import energy_kernel_cost as _energy_kernel_cost  # noqa: F401
from . import psi_star as _psi_star  # noqa: F401
from . import quadratic_cost as _quadratic_cost  # noqa: F401
from . import r1_penalty as _r1_penalty  # noqa: F401
from . import weak_quadratic_cost as _weak_quadratic_cost  # noqa: F401

_registry.register_autograd_formulas("_triton")


def quadratic_cost(x2: Tensor, y2: Tensor, scale: float) -> Tensor:
    return torch.ops.fastot.quadratic_cost_triton(x2, y2, scale)


def psi_star(t: Tensor, kind: str, alpha: float) -> Tensor:
    return torch.ops.fastot.psi_star_triton(t, kind, alpha)[0]


def semi_dual_loss(
    cost1: Tensor, fake1: Tensor, real1: Tensor, psi_source: str, psi_target: str, alpha: float
) -> Tensor:
    return torch.ops.fastot.semi_dual_loss_triton(cost1, fake1, real1, psi_source, psi_target, alpha)[0]


def r1_penalty(g2: Tensor, weight: float) -> Tensor:
    return torch.ops.fastot.r1_penalty_triton(g2, weight)


def weak_quadratic_cost(x2: Tensor, y3: Tensor, gamma: float, scale: float) -> Tensor:
    return torch.ops.fastot.weak_quadratic_cost_triton(x2, y3, gamma, scale)


def energy_kernel_cost(x2: Tensor, y3: Tensor, gamma: float, scale: float) -> Tensor:
    return torch.ops.fastot.energy_kernel_cost_triton(x2, y3, gamma, scale)[0]
