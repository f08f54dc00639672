"""Triton kernels of fastot (installed as ``fastot.kernels``).

Each op is a ``torch.library.triton_op`` named ``fastot::<op>_triton`` with the schema of
the C++ op ``fastot::<op>``, so the op's one autograd (``fastot/ops/<op>.py``) serves both.
Importing this package raises ImportError when Triton is missing, and fastot falls back to its
other backends. The ops take inputs that the public API has already validated and flattened
(``[B, d]`` rows, ``[B, Z, d]`` samples, ``[B]`` scores).
"""

from __future__ import annotations

import triton  # noqa: F401  (the ImportError by which fastot detects a missing Triton)

# Importing the modules defines the fastot::<op>_triton ops.
from . import energy_kernel_cost as _energy_kernel_cost  # noqa: F401
from . import psi_star as _psi_star  # noqa: F401
from . import quadratic_cost as _quadratic_cost  # noqa: F401
from . import r1_penalty as _r1_penalty  # noqa: F401
from . import semi_dual_loss as _semi_dual_loss  # noqa: F401
from . import weak_quadratic_cost as _weak_quadratic_cost  # noqa: F401
