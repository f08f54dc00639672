"""Data sources: exact toy samplers, the OU gradient flow, and the sampler registry."""

import fastot.data.images  # noqa: F401  (registers the image samplers)
from fastot.data import ou, toy
from fastot.data.ou import OUTarget, ou_parameters, ou_solution
from fastot.data.registry import SAMPLERS, build_sampler, register_sampler
from fastot.data.toy import Gaussian, Mixture, Sampler

__all__ = [
    "SAMPLERS",
    "Gaussian",
    "Mixture",
    "OUTarget",
    "Sampler",
    "build_sampler",
    "ou",
    "ou_parameters",
    "ou_solution",
    "register_sampler",
    "toy",
]
