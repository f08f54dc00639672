"""Data sources: exact toy samplers, the OU gradient flow, image data, and the sampler registry."""

# Importing these modules registers their samplers.
from fastot.data import dataset_samplers, noise, ou, toy
from fastot.data.dataset_samplers import DATASET_SAMPLERS
from fastot.data.noise import NOISE_SAMPLERS
from fastot.data.ou import OUTarget, ou_parameters, ou_solution
from fastot.data.registry import SAMPLERS, build_sampler, register_sampler
from fastot.data.toy import Gaussian, Mixture, Sampler

# Every sampler name that yields images ``[C, H, W]`` (``.shape``, no ``.dim``).
IMAGE_SAMPLERS = DATASET_SAMPLERS + NOISE_SAMPLERS

__all__ = [
    "IMAGE_SAMPLERS",
    "SAMPLERS",
    "Gaussian",
    "Mixture",
    "OUTarget",
    "Sampler",
    "build_sampler",
    "dataset_samplers",
    "noise",
    "ou",
    "ou_parameters",
    "ou_solution",
    "register_sampler",
    "toy",
]
