"""Image metrics with the FID Inception v3 network: FID, improved precision and recall, Inception Score.

The metrics layer, below the trainer (which logs FID during training); ``python -m fastot.eval``
(:mod:`fastot.eval.__main__`) is the command line on top, drawing a run's samples through
:mod:`fastot.sampling`."""

from fastot.eval.fid import (
    FeatureExtractor,
    compute_statistics,
    extract,
    frechet_distance,
    load_stats,
    reference_statistics,
    save_stats,
)
from fastot.eval.inception_score import inception_score, inception_score_of_logits
from fastot.eval.precision_recall import knn_radii, precision_recall

__all__ = [
    "FeatureExtractor",
    "compute_statistics",
    "extract",
    "frechet_distance",
    "inception_score",
    "inception_score_of_logits",
    "knn_radii",
    "load_stats",
    "precision_recall",
    "reference_statistics",
    "save_stats",
]
