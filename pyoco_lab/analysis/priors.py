"""Noise priors study (notebook 01): closed-form vs sampled frame correlation over alpha."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from pyoco_lab import noise


def prior_study(
    alphas: Sequence[float],
    *,
    kinds: Sequence[str] = ("mixed", "progressive"),
    num_frames: int = 8,
    num_samples: int = 64,
    resolution: int = 16,
    channels: int = 3,
    seed: int = 0,
) -> dict:
    """Sample every (kind, alpha) prior and compare its frame correlation with eqs. 3-4's closed form.

    Returns {"matrices": {(kind, alpha): (closed, empirical)}, "max_abs_error", "standard_error",
    "worst_error_in_standard_errors", "variance_range"}. Yardstick: each empirical correlation averages
    n = samples*channels*pixels products of Gaussian pairs, so its standard error is (1 - rho²)/sqrt(n)
    <= 1/sqrt(n); the maximum over a few hundred matrix entries is then ~3-4 standard errors.
    """
    if num_frames < 2 or num_samples < 2:
        raise ValueError("prior_study needs num_frames >= 2 and num_samples >= 2 to measure correlation")
    generator = torch.Generator().manual_seed(seed)
    shape = (num_samples, num_frames, channels, resolution, resolution)
    matrices, errors, variances = {}, [], []
    for kind in kinds:
        for alpha in alphas:
            sample = noise.sample_noise(kind, shape, alpha, generator=generator, dtype=torch.float64)
            closed = noise.frame_correlation(kind, num_frames, alpha)
            empirical = noise.empirical_frame_correlation(sample)
            matrices[(kind, float(alpha))] = (closed, empirical)
            errors.append(float((empirical - closed).abs().max()))
            variances.append(noise.empirical_frame_variance(sample))
    n = num_samples * channels * resolution**2
    standard_error = 1.0 / math.sqrt(n)
    variance = torch.cat(variances)
    return {
        "matrices": matrices,
        "max_abs_error": max(errors),
        "standard_error": standard_error,
        "worst_error_in_standard_errors": max(errors) / standard_error,
        "variance_range": [float(variance.min()), float(variance.max())],
        "samples_per_pair": n,
    }


def limit_table(num_frames: int = 8) -> dict[str, list[float]]:
    """Correlation at distance 1 and num_frames-1 in the two limits alpha -> 0 (i.i.d.) and alpha -> inf."""
    table = {}
    for kind in ("mixed", "progressive"):
        for alpha in (0.0, math.inf):
            curve = noise.correlation_by_distance(kind, num_frames, alpha)
            table[f"{kind}, alpha={'inf' if math.isinf(alpha) else '0'}"] = [
                float(curve[1]),
                float(curve[-1]),
            ]
    return table
