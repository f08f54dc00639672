"""r1_penalty: the public functions, PyTorch reference, fake kernels and autograd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from fastot.ops import _checks, _library
from fastot.ops._backend import resolve
from fastot.ops._library import Kernels, needs


def r1_penalty(grad: Tensor, weight: float, *, backend: str | None = None) -> Tensor:
    r"""R1 penalty :math:`\frac{w}{2} \frac1B \sum_i \lVert g_i \rVert^2` of a potential's input gradient.

    Its backward is itself differentiable, so the potential trains through the double backward.

    Args:
        grad (Tensor[B, ...]): gradient of the potential at the data (``create_graph=True``).
        weight (float): non-negative R1 weight (the papers' ``r1_gamma`` / ``lmbda``).
        backend (str, optional): see :func:`fastot.quadratic_cost`.

    Returns:
        A 0-d tensor in the dtype of ``grad``.
    """
    op = "r1_penalty"
    _checks.tensor(op, "grad", grad)
    _checks.nonempty(op, "grad", grad)
    weight = _checks.number(op, "weight", weight, nonneg=True)
    g2 = _checks.rows(grad)
    impl = resolve(grad.device, backend)
    if impl == "eager":
        return reference(g2, weight)
    if impl == "cpp" and g2.requires_grad and torch.is_grad_enabled() and not torch.compiler.is_compiling():
        return _ValueAndGrad.apply(g2, weight)
    return _library.call(impl, op, g2, weight)


def r1_regularizer(
    potential: Callable[[Tensor], Tensor], real: Tensor, weight: float, *, backend: str | None = None
) -> Tensor:
    """R1 penalty of ``potential`` at the data ``real`` (Tensor[B, ...]).

    Takes ``d potential(real).sum() / d real`` with ``create_graph=True`` and applies
    :func:`r1_penalty`, so the result backpropagates into the potential's parameters.
    ``real`` does not need ``requires_grad``: a detached copy that requires it is used.
    """
    _checks.tensor("r1_regularizer", "real", real)
    weight = _checks.number("r1_regularizer", "weight", weight, nonneg=True)
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(potential(real).sum(), real, create_graph=True)
    return r1_penalty(grad, weight, backend=backend)


def reference(grad: Tensor, weight: float) -> Tensor:
    """``(weight / 2) * mean_i ||grad_i||^2`` for ``[B, d]`` gradients."""
    return (0.5 * weight * _checks.upcast(grad).square().sum(dim=1).mean()).to(grad.dtype)


# --- fake kernels and autograd of fastot::r1_penalty and its backward op --------------------------
# d/dgrad = w / B * g * grad, through a backward op whose own backward is linear: R1 is
# differentiable twice on every backend.


def _fake(grad: Tensor, weight: float) -> Tensor:
    return grad.new_empty(())


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    grad, weight = inputs
    ctx.save_for_backward(grad)
    ctx.weight = weight


def _backward(kernels: Kernels, ctx: Any, g: Tensor) -> tuple[Tensor, None]:
    (grad,) = ctx.saved_tensors
    return kernels.call("_r1_penalty_backward", g, grad, ctx.weight), None


def _fake_backward(grad_out: Tensor, grad: Tensor, weight: float) -> Tensor:
    return torch.empty_like(grad, memory_format=torch.contiguous_format)


def _setup_context_backward(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    grad_out, grad, weight = inputs
    ctx.save_for_backward(grad_out, grad)
    ctx.weight = weight


def _backward_backward(kernels: Kernels, ctx: Any, gg: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
    grad_out, grad = ctx.saved_tensors
    c = ctx.weight / grad.shape[0]
    d_out = (c * (gg * grad).sum()).reshape(grad_out.shape).to(grad_out.dtype) if needs(ctx, 0) else None
    d_grad = kernels.call("_r1_penalty_backward", grad_out, gg, ctx.weight) if needs(ctx, 1) else None
    return d_out, d_grad, None


def _fake_and_grad(grad: Tensor, weight: float) -> tuple[Tensor, Tensor]:
    return grad.new_empty(()), torch.empty_like(grad, memory_format=torch.contiguous_format)


def _fake_grad_for(d_grad: Tensor, grad_out: Tensor, grad: Tensor, weight: float) -> None:
    return None


class _ValueAndGrad(torch.autograd.Function):
    """R1 on the CPU when it will be backpropagated, as training always does: the forward writes the
    gradient for grad_out = 1 while it reads ``grad`` for the sum, so the pair reads ``grad`` once
    instead of twice (forward and backward 1.4x faster at [16, 3, 256, 256] on one thread). The
    forward alone does more work, which a forward without a backward pays for. The backward hands
    that gradient over, rewritten in place only for another grad_out (the C++ op reads grad_out,
    which costs nothing on the CPU). A backward that builds a graph, or a second one through a
    retained graph, runs the differentiable backward op instead: same numbers. GPUs keep the two
    passes: there the backward could not read grad_out without a host sync."""

    @staticmethod
    def forward(ctx: Any, grad: Tensor, weight: float) -> Tensor:
        with torch._C._AutoDispatchBelowAutograd():
            value, d_grad = torch.ops.fastot._r1_penalty_and_grad.default(grad, weight)
        ctx.save_for_backward(grad)
        ctx.weight = weight
        ctx.d_grad = d_grad  # not a saved tensor: handed over once and changed in place
        return value

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        (grad,) = ctx.saved_tensors
        d_grad, ctx.d_grad = ctx.d_grad, None
        if d_grad is None or torch.is_grad_enabled():
            return _library.CPP.call("_r1_penalty_backward", g, grad, ctx.weight), None
        with torch._C._AutoDispatchBelowAutograd():
            torch.ops.fastot._r1_penalty_grad_for_.default(d_grad, g, grad, ctx.weight)
        return d_grad, None


_library.define("r1_penalty", fake=_fake, setup_context=_setup_context, backward=_backward)
_library.define(
    "_r1_penalty_backward",
    fake=_fake_backward,
    setup_context=_setup_context_backward,
    backward=_backward_backward,
)
_library.define("_r1_penalty_and_grad", fake=_fake_and_grad, cpp_only=True)
_library.define("_r1_penalty_grad_for_", fake=_fake_grad_for, cpp_only=True)
