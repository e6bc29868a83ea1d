"""Precision / recall and density / coverage: quality and diversity apart, in the appearance space.

A single distance (FD, KID) cannot say *why* two sets differ. These k-nearest-neighbour estimates of the
two supports can:

* **precision** (Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative
  Models", NeurIPS 2019): the fraction of generated samples that fall inside the real manifold, estimated
  as the union of balls around each real sample with radius = distance to its k-th nearest real
  neighbour. Low precision: samples unlike any real frame.
* **recall** (same paper): the fraction of real samples inside the generated manifold (balls around
  generated samples). Low recall: the model covers little of the real variety.
* **density** (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020):
  (1/kM) Σ_j Σ_i 1[Y_j ∈ B(X_i, NND_k(X_i))] — how many real balls contain each sample; ≈ 1 for a real
  set, robust to real outliers that inflate precision.
* **coverage** (same paper): the fraction of real samples whose ball contains at least one generated
  sample; ≈ 1 − 1/e^k-ish for a matched real set, robust to generated outliers that inflate recall.

k = 3 for precision/recall (Kynkäänniemi et al.'s choice) and k = 5 for density/coverage (Naeem et al.'s).
Distances are Euclidean in the space the caller passes (the lab passes the appearance space,
``appearance.embed``, where every block of features weighs the same). Real and generated
sets should have the same size: the expected values of all four depend on it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

K_PRECISION_RECALL = 3
K_DENSITY_COVERAGE = 5


def _kth_neighbour_radius(x: np.ndarray, k: int) -> np.ndarray:
    distances = cdist(x, x)
    return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real: np.ndarray, generated: np.ndarray, *, k: int = K_PRECISION_RECALL) -> dict:
    """{"precision", "recall"} of ``generated`` against ``real`` (rows are feature vectors)."""
    _check_sizes(real, generated, k)
    cross = cdist(real, generated)  # (real, generated)
    real_radius = _kth_neighbour_radius(real, k)
    generated_radius = _kth_neighbour_radius(generated, k)
    precision = float((cross <= real_radius[:, None]).any(axis=0).mean())
    recall = float((cross <= generated_radius[None, :]).any(axis=1).mean())
    return {"precision": precision, "recall": recall}


def density_coverage(real: np.ndarray, generated: np.ndarray, *, k: int = K_DENSITY_COVERAGE) -> dict:
    """{"density", "coverage"} of ``generated`` against ``real`` (rows are feature vectors)."""
    _check_sizes(real, generated, k)
    cross = cdist(real, generated)
    inside = cross <= _kth_neighbour_radius(real, k)[:, None]  # (real, generated): sample j in ball i
    density = float(inside.sum() / (k * len(generated)))
    coverage = float((cross.min(axis=1) <= _kth_neighbour_radius(real, k)).mean())
    return {"density": density, "coverage": coverage}


def _check_sizes(real: np.ndarray, generated: np.ndarray, k: int) -> None:
    if min(len(real), len(generated)) <= k:
        raise ValueError(
            f"k-NN manifolds need more than k = {k} samples per set, got {len(real)} and {len(generated)}"
        )
