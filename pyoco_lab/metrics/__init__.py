"""Evaluation metrics: Fréchet distance, Inception Score, temporal statistics (see docs/metrics.md)."""

from pyoco_lab.metrics.frechet import (
    FeatureStats,
    FrechetResult,
    frechet_distance,
    frechet_distance_from_features,
)
from pyoco_lab.metrics.scores import inception_score, splits_for
from pyoco_lab.metrics.temporal import (
    consecutive_frame_similarity,
    motion_energy,
    sample_diversity,
    temporal_statistics,
)

__all__ = [
    "FeatureStats",
    "FrechetResult",
    "consecutive_frame_similarity",
    "frechet_distance",
    "frechet_distance_from_features",
    "inception_score",
    "motion_energy",
    "sample_diversity",
    "splits_for",
    "temporal_statistics",
]
