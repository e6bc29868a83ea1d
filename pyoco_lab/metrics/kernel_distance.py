"""Kernel distance (KID): an unbiased two-sample distance between feature sets.

Bińkowski et al., "Demystifying MMD GANs" (ICLR 2018), Sec. 3 / eq. 4: the squared maximum mean discrepancy
with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ (d: the feature dimension; here the reference's
mean squared norm, which is the dimension for standardised features), estimated without bias,

    KID = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i, y_j) − 2/(mn) Σ_{i,j} k(x_i, y_j).

Why beside the Fréchet distance: FD is biased upwards at small N (its bias depends on the model, so two
models at the same N can swap order; Bińkowski et al. Sec. 3, Chong & Forsyth 2020), and the lab's presets
evaluate with a few hundred frames. KID's expectation is the population distance whatever N is, so two
disjoint sets of real frames score ≈ 0 (it can be slightly negative) and a gap is a gap.

The kernel is not scale-free: pass features in a space where every dimension has a comparable scale (the
lab passes the appearance space, ``appearance.embed``: standardised with the reference's statistics; the
kernel's xᵀy/d then is a correlation-like similarity, as for Inception features in KID).

The interval is a bootstrap over the evaluated set's rows (reference fixed), leaving out the pairs of a row
with its own copy so the within-set sum stays an unbiased U-statistic; the normal interval (estimate ±
1.96 × the resamples' std), as for the lab's other bootstrap intervals (``stats.bootstrap_interval``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from pyoco_lab.stats import CONFIDENCE


def _kernel(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    return (a @ b.T / scale + 1.0) ** 3


def kernel_distance(
    reference: np.ndarray,
    other: np.ndarray,
    *,
    groups: int = 1,
    num_resamples: int = 100,
    seed: int = 0,
) -> dict:
    """{"value", "ci95": [low, high], "n": [m, n]} of KID between two feature sets (rows = samples).

    ``groups`` > 1
    says ``other``'s rows come in consecutive groups of that many (the frames of one clip): the bootstrap
    then resamples whole groups, since frames of one clip are not independent samples.
    """
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    m, n = len(reference), len(other)
    if m < 2 or n < 2:
        raise ValueError(f"a kernel distance needs at least 2 samples per set, got {m} and {n}")
    scale = max(float((reference**2).sum(axis=1).mean()), 1e-12)
    k_xx = _kernel(reference, reference, scale)
    k_yy = _kernel(other, other, scale)
    k_xy = _kernel(reference, other, scale)
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))

    def value(rows: np.ndarray) -> float:
        same = rows[:, None] == rows[None, :]  # a row paired with itself (or its bootstrap copy): left out
        within = np.where(same, 0.0, k_yy[np.ix_(rows, rows)]).sum() / max(1, (~same).sum())
        return float(term_xx + within - 2.0 * k_xy[:, rows].mean())

    estimate = value(np.arange(n))
    if n % groups:
        raise ValueError(f"{n} rows do not split into groups of {groups}")
    rng = np.random.default_rng(seed)
    num_groups = n // groups

    def resample() -> np.ndarray:
        picked = rng.integers(0, num_groups, num_groups)
        return (picked[:, None] * groups + np.arange(groups)[None, :]).ravel()

    draws = np.array([value(resample()) for _ in range(num_resamples)])
    half = float(scipy_stats.norm.ppf(0.5 + CONFIDENCE / 2) * draws.std(ddof=1)) if num_resamples > 1 else 0.0
    return {"value": estimate, "ci95": [estimate - half, estimate + half], "n": [m, n]}
