"""Evaluation of image runs with the FID Inception v3 network (``python -m fastot.eval``): FID,
improved precision and recall, Inception Score."""

from fastot.eval.fid import (
    FeatureExtractor,
    compute_statistics,
    extract,
    frechet_distance,
    load_stats,
    reference_statistics,
    save_stats,
)
from fastot.eval.generate import generate_images, iter_generated
from fastot.eval.inception_score import inception_score, inception_score_of_logits
from fastot.eval.precision_recall import knn_radii, precision_recall

__all__ = [
    "FeatureExtractor",
    "compute_statistics",
    "extract",
    "frechet_distance",
    "generate_images",
    "inception_score",
    "inception_score_of_logits",
    "iter_generated",
    "knn_radii",
    "load_stats",
    "precision_recall",
    "reference_statistics",
    "save_stats",
]
