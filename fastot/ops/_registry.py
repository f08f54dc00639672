"""Fake (meta) kernels and autograd formulas of the ``fastot::`` C++ ops.

Imported only when ``fastot._C`` (which defines the schemas) has loaded. Backward
formulas are written with other fastot ops or plain torch ops, so that every op whose
backward is differentiable supports double backward (R1 trains through it); the weak
costs' backward ops raise a clear error instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastot.ops import _reference

lib = torch.library


# --- fake kernels: shapes and dtypes only -------------------------------------------------


def register_fake_kernels() -> None:
    """Shapes and dtypes of the C++ ops, for FakeTensor / torch.compile tracing."""

    @lib.register_fake("fastot::quadratic_cost")
    def _(x: Tensor, y: Tensor, scale: float) -> Tensor:
        return x.new_empty(x.shape[0])

    @lib.register_fake("fastot::_quadratic_cost_backward")
    def _(grad: Tensor, x: Tensor, y: Tensor, scale: float) -> Tensor:
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    @lib.register_fake("fastot::psi_star")
    def _(t: Tensor, kind: str, alpha: float) -> tuple[Tensor, Tensor]:
        return (
            torch.empty_like(t, memory_format=torch.contiguous_format),
            torch.empty_like(t, memory_format=torch.contiguous_format),
        )

    @lib.register_fake("fastot::semi_dual_loss")
    def _(cost: Tensor, v_fake: Tensor, v_real: Tensor, psi_source: str, psi_target: str, alpha: float):
        return v_fake.new_empty(()), torch.empty_like(v_fake), torch.empty_like(v_real)

    @lib.register_fake("fastot::r1_penalty")
    def _(grad: Tensor, weight: float) -> Tensor:
        return grad.new_empty(())

    @lib.register_fake("fastot::_r1_penalty_backward")
    def _(grad_out: Tensor, grad: Tensor, weight: float) -> Tensor:
        return torch.empty_like(grad, memory_format=torch.contiguous_format)

    @lib.register_fake("fastot::weak_quadratic_cost")
    def _(x: Tensor, y: Tensor, gamma: float, scale: float) -> Tensor:
        return x.new_empty(x.shape[0])

    @lib.register_fake("fastot::_weak_quadratic_cost_backward")
    def _(grad: Tensor, x: Tensor, y: Tensor, gamma: float, scale: float) -> tuple[Tensor, Tensor]:
        return (
            torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(y, memory_format=torch.contiguous_format),
        )

    def _norm_dtype(x: Tensor) -> torch.dtype:
        return torch.float64 if x.dtype == torch.float64 else torch.float32

    @lib.register_fake("fastot::energy_kernel_cost")
    def _(x: Tensor, y: Tensor, gamma: float, scale: float) -> tuple[Tensor, Tensor]:
        z = y.shape[1]
        return x.new_empty(x.shape[0]), x.new_empty((x.shape[0], z + z * (z - 1) // 2), dtype=_norm_dtype(x))

    @lib.register_fake("fastot::_energy_kernel_cost_backward")
    def _(grad: Tensor, x: Tensor, y: Tensor, norms: Tensor, gamma: float, scale: float):
        return (
            torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(y, memory_format=torch.contiguous_format),
        )


# --- autograd -------------------------------------------------------------------------------


def _needs(ctx, i: int) -> bool:
    return bool(ctx.needs_input_grad[i])


# psi_star returns (value, derivative); the derivative is saved, not recomputed, and is
# itself differentiable (second derivative from the reference) so psi_star is twice
# differentiable.
def _psi_setup(ctx, inputs, output):
    t, kind, alpha = inputs
    # Unused output gradients arrive as None, not zeros: 0 * inf would turn kl's
    # overflowed derivative into NaN.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(t, output[1])
    ctx.kind, ctx.alpha = kind, alpha


def _psi_backward(ctx, g_value, g_deriv):
    t, deriv = ctx.saved_tensors
    if not _needs(ctx, 0):
        return None, None, None
    out = torch.zeros_like(t) if g_value is None else g_value * deriv
    if g_deriv is not None:
        out = out + g_deriv * _reference.psi_star_grad2(t, ctx.kind, ctx.alpha)
    return out, None, None


# semi_dual_loss returns (loss, d loss/d v_fake, d loss/d v_real) from one pass.
def _sdl_setup(ctx, inputs, output):
    cost, v_fake, v_real, src, tgt, alpha = inputs
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(cost, v_fake, v_real, output[1], output[2])
    ctx.src, ctx.tgt, ctx.alpha = src, tgt, alpha


def _sdl_backward(ctx, g_loss, g_dfake, g_dreal):
    cost, v_fake, v_real, d_fake, d_real = ctx.saved_tensors
    gf = torch.zeros_like(v_fake) if g_loss is None else g_loss * d_fake
    gr = torch.zeros_like(v_real) if g_loss is None else g_loss * d_real
    # Second-order terms, only reached when the derivative outputs are differentiated.
    if g_dfake is not None:
        t = v_fake - cost
        gf = gf + g_dfake * _reference.psi_star_grad2(t, ctx.src, ctx.alpha) / v_fake.shape[0]
    if g_dreal is not None:
        gr = gr + g_dreal * _reference.psi_star_grad2(-v_real, ctx.tgt, ctx.alpha) / v_real.shape[0]
    return (
        (-gf if _needs(ctx, 0) else None),
        (gf if _needs(ctx, 1) else None),
        (gr if _needs(ctx, 2) else None),
        None,
        None,
        None,
    )


class _PsiStar(torch.autograd.Function):
    """psi_star with a plain autograd.Function: the same formulas as the registered op, but
    without the registration wrapper, whose overhead dominates at the small sizes Psi* sees."""

    @staticmethod
    def forward(ctx, t, kind, alpha):
        with torch._C._AutoDispatchBelowAutograd():
            out = torch.ops.fastot.psi_star.default(t, kind, alpha)
        _psi_setup(ctx, (t, kind, alpha), out)
        return out

    backward = staticmethod(_psi_backward)


class _SemiDualLoss(torch.autograd.Function):
    """semi_dual_loss on the same fast path as :class:`_PsiStar`."""

    @staticmethod
    def forward(ctx, cost, v_fake, v_real, src, tgt, alpha):
        with torch._C._AutoDispatchBelowAutograd():
            out = torch.ops.fastot.semi_dual_loss.default(cost, v_fake, v_real, src, tgt, alpha)
        _sdl_setup(ctx, (cost, v_fake, v_real, src, tgt, alpha), out)
        return out

    backward = staticmethod(_sdl_backward)


def psi_star(t: Tensor, kind: str, alpha: float) -> Tensor:
    """The C++/CUDA psi_star value; the registered op under torch.compile, else the fast path."""
    if torch.compiler.is_compiling():
        return torch.ops.fastot.psi_star(t, kind, alpha)[0]
    return _PsiStar.apply(t, kind, alpha)[0]


def semi_dual_loss(cost: Tensor, v_fake: Tensor, v_real: Tensor, src: str, tgt: str, alpha: float) -> Tensor:
    """The C++/CUDA semi_dual_loss value, as :func:`psi_star` chooses its path."""
    if torch.compiler.is_compiling():
        return torch.ops.fastot.semi_dual_loss(cost, v_fake, v_real, src, tgt, alpha)[0]
    return _SemiDualLoss.apply(cost, v_fake, v_real, src, tgt, alpha)[0]


def register_autograd_formulas(suffix: str = "") -> None:
    """Autograd of ``fastot::<op><suffix>``: "" for the C++ ops, "_triton" for the Triton ops.

    Both families share schemas, so one set of formulas serves them; backward calls go to
    the backward op of the same family.
    """

    def ops(name: str):
        return getattr(torch.ops.fastot, name + suffix)

    # quadratic_cost: d/dx = 2 s g (x - y), d/dy = -d/dx. One kernel pass per requested gradient.
    def _qc_setup(ctx, inputs, output):
        x, y, scale = inputs
        ctx.save_for_backward(x, y)
        ctx.scale = scale

    def _qc_backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = gy = None
        if _needs(ctx, 0):
            gx = ops("_quadratic_cost_backward")(grad, x, y, ctx.scale)
            if _needs(ctx, 1):
                gy = -gx
        elif _needs(ctx, 1):
            gy = ops("_quadratic_cost_backward")(grad, y, x, ctx.scale)
        return gx, gy, None

    lib.register_autograd(f"fastot::quadratic_cost{suffix}", _qc_backward, setup_context=_qc_setup)

    # _quadratic_cost_backward(g, a, b) = 2 s g (a - b): linear in g and in (a - b).
    def _qcb_setup(ctx, inputs, output):
        grad, a, b, scale = inputs
        ctx.save_for_backward(grad, a, b)
        ctx.scale = scale

    def _qcb_backward(ctx, gg):
        grad, a, b = ctx.saved_tensors
        s2 = 2.0 * ctx.scale
        d_grad = d_a = d_b = None
        if _needs(ctx, 0):
            d_grad = (s2 * gg * (a - b)).sum(dim=1).to(grad.dtype)
        if _needs(ctx, 1) or _needs(ctx, 2):
            da = s2 * grad.to(gg.dtype).unsqueeze(1) * gg
            d_a = da if _needs(ctx, 1) else None
            d_b = -da if _needs(ctx, 2) else None
        return d_grad, d_a, d_b, None

    lib.register_autograd(
        f"fastot::_quadratic_cost_backward{suffix}", _qcb_backward, setup_context=_qcb_setup
    )

    lib.register_autograd(f"fastot::psi_star{suffix}", _psi_backward, setup_context=_psi_setup)

    lib.register_autograd(f"fastot::semi_dual_loss{suffix}", _sdl_backward, setup_context=_sdl_setup)

    # r1_penalty: d/dgrad = w / B * g * grad, through an op whose own backward is linear.
    def _r1_setup(ctx, inputs, output):
        grad, weight = inputs
        ctx.save_for_backward(grad)
        ctx.weight = weight

    def _r1_backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return ops("_r1_penalty_backward")(g, grad, ctx.weight), None

    lib.register_autograd(f"fastot::r1_penalty{suffix}", _r1_backward, setup_context=_r1_setup)

    def _r1b_setup(ctx, inputs, output):
        grad_out, grad, weight = inputs
        ctx.save_for_backward(grad_out, grad)
        ctx.weight = weight

    def _r1b_backward(ctx, gg):
        grad_out, grad = ctx.saved_tensors
        c = ctx.weight / grad.shape[0]
        d_out = (c * (gg * grad).sum()).reshape(grad_out.shape).to(grad_out.dtype) if _needs(ctx, 0) else None
        d_grad = ops("_r1_penalty_backward")(grad_out, gg, ctx.weight) if _needs(ctx, 1) else None
        return d_out, d_grad, None

    lib.register_autograd(f"fastot::_r1_penalty_backward{suffix}", _r1b_backward, setup_context=_r1b_setup)

    # Weak costs: fused backward kernels; their double backward is not supported.
    def _wq_setup(ctx, inputs, output):
        x, y, gamma, scale = inputs
        ctx.save_for_backward(x, y)
        ctx.gamma, ctx.scale = gamma, scale

    def _wq_backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx, gy = ops("_weak_quadratic_cost_backward")(grad, x, y, ctx.gamma, ctx.scale)
        return (gx if _needs(ctx, 0) else None), (gy if _needs(ctx, 1) else None), None, None

    lib.register_autograd(f"fastot::weak_quadratic_cost{suffix}", _wq_backward, setup_context=_wq_setup)

    def _ek_setup(ctx, inputs, output):
        x, y, gamma, scale = inputs
        ctx.save_for_backward(x, y, output[1])
        ctx.gamma, ctx.scale = gamma, scale

    def _ek_backward(ctx, grad, _g_norms):
        x, y, norms = ctx.saved_tensors
        gx, gy = ops("_energy_kernel_cost_backward")(grad, x, y, norms, ctx.gamma, ctx.scale)
        return (gx if _needs(ctx, 0) else None), (gy if _needs(ctx, 1) else None), None, None

    lib.register_autograd(f"fastot::energy_kernel_cost{suffix}", _ek_backward, setup_context=_ek_setup)

    def _no_double_backward(name: str):
        def backward(ctx, *grads):
            raise RuntimeError(
                f"double backward of fastot::{name} is not supported; use backend='eager' "
                "if you need to differentiate its gradient"
            )

        return backward

    for _name in ("_weak_quadratic_cost_backward", "_energy_kernel_cost_backward"):
        lib.register_autograd(
            f"fastot::{_name}{suffix}",
            _no_double_backward(_name),
            setup_context=lambda ctx, inputs, output: None,
        )
