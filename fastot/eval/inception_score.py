"""Inception Score: ``exp(E_x KL(p(y|x) || p(y)))`` over the FID Inception's 1008 classes.

As in the original definition, the samples are cut into ``splits`` consecutive parts (10 by
default); each part gives a score with its own marginal ``p(y)``, and the result is the mean and
standard deviation of those scores. The class probabilities are the softmax of the unbiased logits
(:meth:`fastot.eval.inception.FIDInceptionV3.logits`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def inception_score(probs: Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score of class probabilities ``[N, C]`` (rows summing to 1)."""
    p = torch.as_tensor(probs).detach().to("cpu", torch.float64)
    if p.dim() != 2:
        raise ValueError(f"class probabilities must be [N, C], got {list(p.shape)}")
    n = p.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"the Inception Score over {splits} splits needs at least {splits} samples, got {n}")
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(0, keepdim=True)
        # KL(p(y|x) || p(y)) with 0 log 0 = 0 (p(y) > 0 wherever p(y|x) > 0)
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)).sum(1)
        scores.append(kl.mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_of_logits(logits: Tensor | np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score of class logits ``[N, C]`` (softmax taken in float64)."""
    x = torch.as_tensor(logits).detach().to("cpu", torch.float64)
    return inception_score(torch.softmax(x, dim=-1), splits)
