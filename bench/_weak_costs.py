"""What the two weak-cost benchmarks share: x [B, 3, 256, 256], Z samples y [B, Z, 3, 256, 256],
the gradient for y only.

B = 16 at both Z = 4 and Z = 8: at B = 64 one eager forward+backward takes about 3 s on two cores
(and its temporaries several GiB), which would not fit the suite's time budget.
"""

from __future__ import annotations

from collections.abc import Callable

from _ops import IMAGE, Case, OpBench, Randn, image_cases
from torch import Tensor

GAMMA, SCALE = 0.5, 1e-5
CASES = image_cases(batches=(16,), zs=(4, 8))


def _inputs(case: Case, randn: Randn) -> tuple[list[Tensor], list[Tensor]]:
    x, y = randn(case.batch, *IMAGE), randn(case.batch, case.z, *IMAGE, grad=True)
    return [x, y], [y]  # the map loss needs the gradient for the samples only


def weak_cost(name: str, op: Callable[..., Tensor], reference: Callable[..., Tensor]) -> OpBench:
    """The OpBench of a weak cost ``op(x, y, gamma, scale, backend=...)`` and its reference."""
    return OpBench(
        name,
        inputs=_inputs,
        public=lambda backend: lambda x, y: op(x, y, GAMMA, SCALE, backend=backend),
        reference=lambda x, y: reference(x.flatten(1), y.flatten(2), GAMMA, SCALE),
        # x and the Z samples y -> [B]; backward reads them again and writes dy.
        bytes_moved=lambda case: ((1 + case.z) + (1 + 2 * case.z) * case.backward) * case.tensor_bytes,
    )
