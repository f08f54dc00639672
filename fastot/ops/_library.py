"""The compiled ops behind every backend, and the one autograd each op has on all of them.

Every op has two compiled implementations under one schema: the C++ op ``fastot::<op>`` (CPU
kernels in ``fastot._C``, CUDA kernels in ``fastot._C_cuda``) and the Triton op
``fastot::<op>_triton`` (``fastot.kernels``). ``fastot/ops/<op>.py`` writes the op's fake kernel
and its autograd once and hands them to :func:`define`, which registers them with
``torch.library`` on both; :func:`call` runs an op of either with that same autograd.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fastot import _extension
from fastot._extension import STATUS


@dataclass(frozen=True)
class _Bound:
    """An op of one family with its autograd: what :class:`_Direct` applies."""

    op: torch._ops.OpOverload
    setup_context: Callable[..., None]
    backward: Callable[..., Any]


class Kernels:
    """One compiled implementation of every op: :data:`CPP` or :data:`TRITON`."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.bound: dict[str, _Bound] = {}

    def qualname(self, name: str) -> str:
        return f"fastot::{name}{self.suffix}"

    def op(self, name: str) -> torch._ops.OpOverload:
        """This family's registered op ``name``."""
        return getattr(torch.ops.fastot, name + self.suffix).default

    def call(self, name: str, *args: Any) -> Any:
        """Op ``name`` of this family on validated inputs, with its autograd: what the public
        functions end in, and how backward formulas call their backward ops."""
        if torch.compiler.is_compiling():
            # The registered op: the compiler traces its fake kernel and its autograd.
            return getattr(torch.ops.fastot, name + self.suffix)(*args)
        bound = self.bound[name]
        if torch.is_grad_enabled():  # a double backward differentiates the backward ops too
            for a in args:  # a loop, not any(<generator>): this runs on every call of every op
                if isinstance(a, Tensor) and a.requires_grad:
                    return _Direct.apply(bound, *args)
        with torch._C._AutoDispatchBelowAutograd():
            return bound.op(*args)


CPP, TRITON = Kernels(""), Kernels("_triton")
FAMILY = {"cpp": CPP, "cuda": CPP, "triton": TRITON}


@dataclass(frozen=True)
class _Definition:
    name: str
    fake: Callable[..., Any]
    setup_context: Callable[..., None]
    backward: Callable[..., Any]


_DEFINITIONS: list[_Definition] = []


def define(
    name: str,
    *,
    fake: Callable[..., Any],
    setup_context: Callable[..., None] | None = None,
    backward: Callable[..., Any] | None = None,
    cpp_only: bool = False,
) -> None:
    """Register op ``name``'s fake kernel and autograd on every compiled family that loaded.

    ``setup_context(ctx, inputs, output)`` and ``backward(kernels, ctx, *grads)`` follow
    ``torch.library.register_autograd``; ``backward`` gets the family whose ops it may call. An op
    without them is a fused backward whose own backward is not supported: differentiating it
    raises instead of silently returning nothing. A ``cpp_only`` op is a CPU kernel's private
    helper with no Triton twin, called below autograd: it gets its fake kernel only.
    """
    if cpp_only:
        if STATUS.cpp:
            torch.library.register_fake(CPP.qualname(name), fake)
        return
    if backward is None:
        setup_context, backward = _no_setup, functools.partial(_no_double_backward, name)
    assert setup_context is not None
    definition = _Definition(name, fake, setup_context, backward)
    _DEFINITIONS.append(definition)
    if STATUS.cpp:
        # Triton ops need no fake: torch.library.triton_op traces their launcher.
        torch.library.register_fake(CPP.qualname(name), fake)
        _bind(definition, CPP)
    if STATUS.triton:
        _bind(definition, TRITON)


def op_names(include_backward: bool = False) -> list[str]:
    """The fused ops in definition order, with their backward ops (``_<op>_backward``) if asked:
    the one list every test, bench and build check derives from."""
    return [d.name for d in _DEFINITIONS if include_backward or not d.name.startswith("_")]


def _bind(definition: _Definition, kernels: Kernels) -> None:
    backward = functools.partial(definition.backward, kernels)
    qualname = kernels.qualname(definition.name)
    torch.library.register_autograd(qualname, backward, setup_context=definition.setup_context)
    kernels.bound[definition.name] = _Bound(kernels.op(definition.name), definition.setup_context, backward)


def _no_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    pass


def _no_double_backward(name: str, kernels: Kernels, ctx: Any, *grads: Tensor) -> Any:
    raise RuntimeError(
        f"double backward of fastot::{name} is not supported; use backend='eager' "
        "if you need to differentiate its gradient"
    )


def load_triton() -> None:
    """Load the Triton kernels and give every op defined so far its autograd on them."""
    _extension.load_triton()
    if STATUS.triton:
        for definition in _DEFINITIONS:
            _bind(definition, TRITON)


def needs(ctx: Any, i: int) -> bool:
    """Whether backward must return the gradient of input ``i``."""
    return bool(ctx.needs_input_grad[i])


def call(backend: str, name: str, *args: Any) -> Any:
    """Op ``name`` of the compiled ``backend`` ("cpp", "cuda" or "triton") on validated inputs."""
    return FAMILY[backend].call(name, *args)


class _Direct(torch.autograd.Function):
    """An op run below the dispatcher's autograd, with the formulas registered for it applied here.

    The same setup_context and backward as the registered autograd, without the registration's
    Python wrapper, which costs more than the kernel itself at the batch sizes of the
    potential's scores (about half the forward time of psi_star on 256 values; about 25 µs per
    backward op called from a backward formula).
    """

    @staticmethod
    def forward(ctx: Any, bound: _Bound, *args: Any) -> Any:
        with torch._C._AutoDispatchBelowAutograd():
            out = bound.op(*args)
        bound.setup_context(ctx, args, out)
        ctx.bound = bound
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        needs_input_grad = ctx.needs_input_grad
        ctx.needs_input_grad = needs_input_grad[1:]  # the formulas index the op's own inputs
        try:
            result = ctx.bound.backward(ctx, *grads)
        finally:
            ctx.needs_input_grad = needs_input_grad
        return (None, *result) if isinstance(result, tuple) else (None, result)
