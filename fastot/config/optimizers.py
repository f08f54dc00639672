"""The optimisers a config's ``optim.map`` / ``optim.potential`` name, and their construction.

Beside the config's validation, which checks the names and arguments, and below the run, which
builds them.
"""

from __future__ import annotations

from typing import Any

import torch

from fastot.errors import ConfigError

OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


def build_optimizer(params, spec: dict[str, Any], key: str) -> torch.optim.Optimizer:
    spec = dict(spec)
    name = spec.pop("name")
    if name not in OPTIMIZERS:
        raise ConfigError(f"{key}.name", f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    if "betas" in spec:
        spec["betas"] = tuple(spec["betas"])
    if name == "adam" and spec.get("fused") is None and spec.get("foreach") is None:
        # One kernel over every parameter instead of a loop of ops per tensor (torch's CPU default):
        # the 1-D toy potential's step is 15% faster on one thread. Under fp16 the GradScaler also
        # hands it the overflow flag on the device instead of reading it back at every step.
        spec["fused"] = True
    try:
        return OPTIMIZERS[name](params, **spec)
    except TypeError as e:
        raise ConfigError(key, str(e)) from None
