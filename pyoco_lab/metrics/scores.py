"""Inception Score from class probabilities (Salimans et al. 2016), as video papers compute it on UCF-101.

    IS = exp( E_x KL(p(y|x) || p(y)) ),  with p(y) the mean prediction over the split,

averaged over ``num_splits`` disjoint splits of a fixed shuffle (TGANv2 / StyleGAN-V protocol: 2,048
samples, 10 splits, C3D probabilities). The same function scores the lab classifier's softmax (``IS-lab``).
"""

from __future__ import annotations

import numpy as np


def splits_for(num_samples: int, num_splits: int = 10) -> int:
    """Splits for ``num_samples``: the protocol's 10 at 2,048 samples, never fewer than ~100 per split.

    Each split's marginal p(y) is estimated from its own samples; with a handful per split the KL to it
    collapses towards 0 and IS towards 1 whatever the model, so small evaluations use fewer splits.
    """
    return max(1, min(num_splits, num_samples // 100))


def inception_score(probabilities, *, num_splits: int = 10, seed: int = 42) -> tuple[float, float]:
    """Mean and standard deviation over splits of the Inception Score of (N, K) class probabilities."""
    p = np.asarray(
        probabilities.detach().cpu() if hasattr(probabilities, "detach") else probabilities, np.float64
    )
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, num_classes), got {p.shape}")
    if num_splits < 1 or p.shape[0] < num_splits:
        raise ValueError(
            f"need at least one sample per split: {p.shape[0]} samples, {num_splits} splits; lower num_splits"
        )
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(
            "rows must be probabilities (non-negative, summing to 1); apply softmax to logits first"
        )
    p = p[np.random.RandomState(seed).permutation(p.shape[0])]
    scores = []
    for part in np.array_split(p, num_splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0·log 0 = 0: classes a sample never predicts contribute nothing (xlogy semantics).
        kl = np.where(
            part > 0, part * (np.log(np.clip(part, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None))), 0
        )
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
