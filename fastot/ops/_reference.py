"""Eager PyTorch reference for every fastot op: the ground truth.

Tests compare every fused backend against these functions and the benchmark suite
times them as the ``eager`` provider. They take validated, flattened inputs
(``[B, d]`` rows, ``[B, Z, d]`` samples) and compute in the input dtype, except
that half and bfloat16 inputs are upcast to float32 like the fused kernels do.
"""

from __future__ import annotations

import torch
from torch import Tensor

PSI_KINDS = ("identity", "kl", "chi2", "softplus", "softplus_unscaled")

_LOG2 = 0.6931471805599453


def _acc(t: Tensor) -> Tensor:
    """Upcast half / bfloat16 to float32 (the fused kernels accumulate in fp32)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def quadratic_cost(x: Tensor, y: Tensor, scale: float = 1.0) -> Tensor:
    """``scale * ||x_i - y_i||^2`` per row of ``[B, d]`` inputs."""
    return (scale * (_acc(x) - _acc(y)).square().sum(dim=1)).to(x.dtype)


def _softplus(s: Tensor) -> Tensor:
    # log(1 + e^s) without overflow, exact where F.softplus switches to s above its threshold, and
    # with the right autograd derivative at s = 0 (max(s, 0) + log1p(e^-|s|) would give 1, not 1/2).
    return torch.logaddexp(s, torch.zeros_like(s))


def _psi(kind: str, s: Tensor) -> Tensor:
    if kind == "identity":
        return s
    if kind == "kl":
        return torch.expm1(s)
    if kind == "chi2":
        c = s.clamp(min=-2.0)
        return 0.25 * c * c + c
    if kind == "softplus":
        return 2.0 * _softplus(s) - 2.0 * _LOG2
    if kind == "softplus_unscaled":
        return _softplus(s)
    raise ValueError(f"kind must be one of {PSI_KINDS}, got {kind!r}")


def psi_star(t: Tensor, kind: str, alpha: float = 1.0) -> Tensor:
    """``alpha * Psi*(t / alpha)`` elementwise."""
    return (alpha * _psi(kind, _acc(t) / alpha)).to(t.dtype)


def psi_star_grad(t: Tensor, kind: str, alpha: float = 1.0) -> Tensor:
    """First derivative of ``alpha * Psi*(t / alpha)`` with respect to ``t``."""
    s = t / alpha
    if kind == "identity":
        return torch.ones_like(t)
    if kind == "kl":
        return torch.exp(s)
    if kind == "chi2":
        return torch.where(s >= -2.0, 0.5 * s + 1.0, torch.zeros_like(s))
    if kind == "softplus":
        return 2.0 * torch.sigmoid(s)
    if kind == "softplus_unscaled":
        return torch.sigmoid(s)
    raise ValueError(f"kind must be one of {PSI_KINDS}, got {kind!r}")


def psi_star_grad2(t: Tensor, kind: str, alpha: float = 1.0) -> Tensor:
    """Second derivative of ``alpha * Psi*(t / alpha)``: used for double backward."""
    s = t / alpha
    if kind == "identity":
        return torch.zeros_like(t)
    if kind == "kl":
        return torch.exp(s) / alpha
    if kind == "chi2":
        return torch.where(s >= -2.0, torch.full_like(s, 0.5 / alpha), torch.zeros_like(s))
    sig = torch.sigmoid(s)
    d2 = sig * (1.0 - sig) / alpha
    return 2.0 * d2 if kind == "softplus" else d2


def semi_dual_loss(
    cost: Tensor,
    v_fake: Tensor,
    v_real: Tensor,
    psi_source: str = "kl",
    psi_target: str = "kl",
    alpha: float = 1.0,
) -> Tensor:
    """``mean_i Psi1*(-cost_i + v_fake_i) + mean_j Psi2*(-v_real_j)`` (a scalar)."""
    fake = alpha * _psi(psi_source, (_acc(v_fake) - _acc(cost)) / alpha)
    real = alpha * _psi(psi_target, -_acc(v_real) / alpha)
    return (fake.mean() + real.mean()).to(cost.dtype)


def r1_penalty(grad: Tensor, weight: float) -> Tensor:
    """``(weight / 2) * mean_i ||grad_i||^2`` for ``[B, d]`` gradients."""
    return (0.5 * weight * _acc(grad).square().sum(dim=1).mean()).to(grad.dtype)


def weak_quadratic_cost(x: Tensor, y: Tensor, gamma: float, scale: float = 1.0) -> Tensor:
    """NOT's gamma-weak quadratic cost from ``Z`` samples: x ``[B, d]``, y ``[B, Z, d]``."""
    xa, ya = _acc(x), _acc(y)
    z = y.shape[1]
    transport = (xa.unsqueeze(1) - ya).square().sum(dim=(1, 2)) / (2 * z)
    var_hat = ya.var(dim=1, unbiased=True).sum(dim=1)
    return (scale * (transport - 0.5 * gamma * var_hat)).to(x.dtype)


class _SafeNorm(torch.autograd.Function):
    """Row norm of ``[..., d]`` whose gradient at 0 is defined as 0 (not NaN)."""

    @staticmethod
    def forward(ctx, diff: Tensor) -> Tensor:  # type: ignore[override]
        norm = diff.square().sum(dim=-1).sqrt()
        ctx.save_for_backward(diff, norm)
        return norm

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        diff, norm = ctx.saved_tensors
        inv = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
        return diff * (grad * inv).unsqueeze(-1)


def safe_norm(diff: Tensor) -> Tensor:
    """Euclidean norm over the last dim, with gradient 0 at the origin."""
    return _SafeNorm.apply(diff)


def energy_kernel_cost(x: Tensor, y: Tensor, gamma: float, scale: float = 1.0) -> Tensor:
    """KNOT's gamma-weak energy-kernel cost (unbiased, ``Z`` samples per row)."""
    xa, ya = _acc(x), _acc(y)
    z = y.shape[1]
    transport = safe_norm(xa.unsqueeze(1) - ya).mean(dim=1)
    pair = safe_norm(ya.unsqueeze(1) - ya.unsqueeze(2))  # [B, Z, Z], zero diagonal
    spread = pair.sum(dim=(1, 2)) / (z * (z - 1))
    return (scale * (0.5 * transport - 0.25 * gamma * spread)).to(x.dtype)
