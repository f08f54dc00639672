"""Toy networks of the papers (vector inputs).

Maps are called as ``T(x, z)`` with ``x`` [B, dim] and ``z`` [B, z_dim] and expose ``z_dim``
(0 for a deterministic map, which ignores ``z``); potentials return one value per sample, [B].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fastot.nn.registry import register_map, register_potential


class ResidualFC(nn.Module):
    """[Linear-SiLU] x 3 with a scaled skip, h <- (h + block(h)) / sqrt(2) (keeps the variance flat)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(*[m for _ in range(3) for m in (nn.Linear(width, width), nn.SiLU())])

    def forward(self, h: Tensor) -> Tensor:
        return (h + self.block(h)) / math.sqrt(2.0)


class ResNetFC(nn.Module):
    """An input FC layer followed by ``blocks`` residual FC blocks (the UOTM toy trunk)."""

    def __init__(self, dim: int, width: int = 128, blocks: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.Sequential(*[ResidualFC(width) for _ in range(blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.inp(x))


class UOTMToyMap(nn.Module):
    """UOTM toy generator (UOTM App. B.1): z-branch (2 FC) + x-trunk, summed, then a 2-layer FC head."""

    def __init__(self, dim: int, z_dim: int = 1, width: int = 128, blocks: int = 3) -> None:
        super().__init__()
        self.dim, self.z_dim = dim, z_dim
        self.trunk = ResNetFC(dim, width, blocks)
        self.z_branch = (
            nn.Sequential(nn.Linear(z_dim, width), nn.SiLU(), nn.Linear(width, width)) if z_dim else None
        )
        self.head = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, dim))

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        h = self.trunk(x)
        if self.z_branch is not None:
            h = h + self.z_branch(z)
        return self.head(h)


class UOTMToyPotential(nn.Module):
    """UOTM toy potential: the same trunk and a scalar FC head."""

    def __init__(self, dim: int, width: int = 128, blocks: int = 3) -> None:
        super().__init__()
        self.trunk = ResNetFC(dim, width, blocks)
        self.head = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, y: Tensor) -> Tensor:
        return self.head(self.trunk(y)).squeeze(-1)


def _mlp(inp: int, out: int, width: int, hidden_layers: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = inp
    for _ in range(hidden_layers):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, out))
    return nn.Sequential(*layers)


class MLPMap(nn.Module):
    """NOT's stochastic map (App. C.1): an MLP on the concatenation [x, z]."""

    def __init__(self, dim: int, z_dim: int = 2, width: int = 128, hidden_layers: int = 2) -> None:
        super().__init__()
        self.dim, self.z_dim = dim, z_dim
        self.net = _mlp(dim + z_dim, dim, width, hidden_layers)

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        return self.net(torch.cat([x, z], dim=1) if self.z_dim else x)


class MLPPotential(nn.Module):
    """NOT's potential: an MLP with a scalar output."""

    def __init__(self, dim: int, width: int = 128, hidden_layers: int = 2) -> None:
        super().__init__()
        self.net = _mlp(dim, 1, width, hidden_layers)

    def forward(self, y: Tensor) -> Tensor:
        return self.net(y).squeeze(-1)


register_map("uotm_toy", smoke={"width": 16})(UOTMToyMap)
register_potential("uotm_toy", smoke={"width": 16})(UOTMToyPotential)
register_map("mlp", smoke={"width": 16})(MLPMap)
register_potential("mlp", smoke={"width": 16})(MLPPotential)
