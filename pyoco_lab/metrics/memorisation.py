"""Memorisation check: are the samples copies of training frames?

A model that reproduces its training frames scores perfectly on every distance to the training
distribution (FD, KID, precision, the two-sample test against training frames). So each sample's distance
to its nearest training frame is compared with the same distance for *real frames the pool does not
contain* (frames of other train-split clips): real footage is never closer to the pool than its own
neighbouring clips are, and a copy is at distance 0 (Carlini et al., "Extracting Training Data from
Diffusion Models", 2023, call a sample memorised when it is far closer to one training image than to the
rest; Meehan et al. 2020 compare generated-to-train with held-out-to-train distances, as here).

Distances are RMS pixel differences in [−1, 1] (copying is literal, so pixels are the right space).

* ``nn_ratio``: median nearest-pool distance of the samples / that of the real query frames. ≈ 1 for real
  frames; ≪ 1 says the samples sit closer to training frames than real footage does (copying); ≫ 1 says
  they are unlike every training frame (the other failure, which the quality measures report).
* ``copy_fraction``: the fraction of samples closer to the pool than the 5th percentile of the real query
  frames' distances; ≈ 0.05 for real frames, → 1 for a model that copies.
"""

from __future__ import annotations

import numpy as np
import torch

COPY_QUANTILE = 0.05


def nearest_distances(queries: torch.Tensor, pool: torch.Tensor, *, batch_size: int = 512) -> np.ndarray:
    """RMS pixel distance from each query frame (N, 3, H, W) to its nearest frame of ``pool`` (M, 3, H, W)."""
    flat_pool = pool.flatten(1).double()
    out = []
    for start in range(0, len(queries), batch_size):
        q = queries[start : start + batch_size].flatten(1).double()
        out.append(torch.cdist(q, flat_pool).min(dim=1).values / flat_pool.shape[1] ** 0.5)
    return torch.cat(out).numpy()


def memorisation(pool: torch.Tensor, real_queries: torch.Tensor, samples: torch.Tensor) -> dict:
    """{"nn_ratio", "copy_fraction", "median_sample", "median_real"} (see the module note)."""
    real_d = nearest_distances(real_queries, pool)
    sample_d = nearest_distances(samples, pool)
    threshold = float(np.quantile(real_d, COPY_QUANTILE))
    median_real = float(np.median(real_d))
    return {
        "nn_ratio": float(np.median(sample_d)) / max(median_real, 1e-12),
        "copy_fraction": float((sample_d < threshold).mean()),
        "median_sample": float(np.median(sample_d)),
        "median_real": median_real,
    }
