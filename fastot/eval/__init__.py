"""Evaluation of image runs: FID with the FID Inception v3 network (``python -m fastot.eval``)."""

from fastot.eval.fid import (
    FeatureExtractor,
    compute_statistics,
    frechet_distance,
    load_stats,
    reference_statistics,
    save_stats,
)
from fastot.eval.generate import generate_images, iter_generated

__all__ = [
    "FeatureExtractor",
    "compute_statistics",
    "frechet_distance",
    "generate_images",
    "iter_generated",
    "load_stats",
    "reference_statistics",
    "save_stats",
]
