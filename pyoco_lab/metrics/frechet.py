"""Fréchet distance between Gaussian fits of two feature sets (FID, FVD and the lab's variants).

    d² = ||μ_a − μ_b||² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})    (Heusel et al. 2017; Unterthiner et al. 2018)

The literature takes the matrix square root with ``scipy.linalg.sqrtm`` and drops its imaginary part; we do
the same so numbers stay comparable, but we *measure* what goes wrong instead of hiding it:

* everything is float64 (float32 covariances of 400–2048-d features lose the small eigenvalues that matter);
* a non-finite square root (singular product, e.g. fewer samples than feature dimensions) is retried with
  ε·I added to both covariances, the usual fix, and the ε is reported;
* the imaginary part of the square root is reported; when it is not negligible (for two PSD matrices it can
  only be round-off), the trace is recomputed from the symmetric form tr((Σ_a^½ Σ_b Σ_a^½)^½) with
  eigendecompositions, which is exact for PSD inputs and always real.

Every result says which path it took (``FrechetResult.method``) so a report can show it beside the number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass(frozen=True)
class FeatureStats:
    """Gaussian fit of a feature set: mean (D,), unbiased covariance (D, D) (1/(N−1)), and N."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def from_features(cls, features) -> FeatureStats:
        """Fit ``features`` of shape (N, D) (numpy array or torch tensor) in float64."""
        x = _as_float64(features)
        if x.ndim != 2:
            raise ValueError(
                f"features must have shape (N, D), got {tuple(x.shape)}; flatten each sample first"
            )
        if x.shape[0] < 2:
            raise ValueError(
                f"need at least 2 feature vectors to fit a covariance, got {x.shape[0]}; use more samples"
            )
        if not np.isfinite(x).all():
            raise ValueError(
                "features contain NaN/inf; check the network inputs (value range, dtype) before fitting"
            )
        return cls(
            mean=x.mean(axis=0), cov=np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]), count=x.shape[0]
        )


@dataclass(frozen=True)
class FrechetResult:
    """A Fréchet distance together with how it was obtained.

    ``distance`` is d² above (what FID/FVD papers report, no square root taken). ``method`` is
    ``"sqrtm"``, ``"sqrtm+eps"`` (ε·I added, see ``eps``) or ``"eigh"`` (symmetric fallback).
    ``sqrtm_max_imag`` is the largest |imaginary part| of scipy's square root relative to its largest
    |entry|: round-off is ~1e-7; values above ``imag_tol`` triggered the fallback.
    """

    distance: float
    mean_term: float
    trace_term: float
    method: str
    eps: float
    sqrtm_max_imag: float

    def __float__(self) -> float:
        return self.distance


def frechet_distance(
    mean_a, cov_a, mean_b, cov_b, *, eps: float = 1e-6, imag_tol: float = 1e-3
) -> FrechetResult:
    """Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b) in float64 (see module docstring)."""
    mu_a, mu_b = _as_float64(mean_a).reshape(-1), _as_float64(mean_b).reshape(-1)
    s_a, s_b = _as_float64(cov_a), _as_float64(cov_b)
    dim = mu_a.shape[0]
    for name, cov in (("cov_a", s_a), ("cov_b", s_b)):
        if cov.shape != (dim, dim):
            raise ValueError(f"{name} must have shape ({dim}, {dim}) to match the means, got {cov.shape}")
        if not np.isfinite(cov).all():
            raise ValueError(f"{name} contains NaN/inf; refit it from finite features")
    if mu_b.shape != mu_a.shape:
        raise ValueError(
            f"means differ in dimension: {mu_a.shape[0]} vs {mu_b.shape[0]}; use the same feature network"
        )

    mean_term = float(np.sum((mu_a - mu_b) ** 2))
    method, used_eps = "sqrtm", 0.0
    with warnings.catch_warnings():
        # scipy warns on singular input; we check finiteness and the imaginary part ourselves below.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(root).all():
        # Singular product (rank-deficient covariances): shift both spectra off zero, as pytorch-fid does.
        # The whole distance is then that of the shifted Gaussians (traces included), so it stays a
        # true, non-negative distance instead of mixing shifted and unshifted terms.
        s_a, s_b = s_a + eps * np.eye(dim), s_b + eps * np.eye(dim)
        root = scipy.linalg.sqrtm(s_a @ s_b)
        method, used_eps = "sqrtm+eps", eps
    if np.isfinite(root).all():
        magnitude = max(float(np.max(np.abs(root))), np.finfo(np.float64).tiny)
        max_imag = float(np.max(np.abs(np.imag(root)))) / magnitude
    else:
        max_imag = float("inf")  # even the ε-shifted product failed: only the symmetric form can answer
    if max_imag <= imag_tol:
        trace_sqrt = float(np.real(np.trace(root)))
    else:
        trace_sqrt = _trace_sqrt_product_psd(s_a, s_b)
        method = "eigh"
        warnings.warn(
            f"sqrtm(Σ_a Σ_b) had a relative imaginary part of {max_imag:.2e} (> {imag_tol:g}); "
            "used the symmetric eigendecomposition instead (exact for PSD covariances)",
            RuntimeWarning,
            stacklevel=2,
        )
    trace_term = float(np.trace(s_a) + np.trace(s_b) - 2.0 * trace_sqrt)
    return FrechetResult(
        distance=mean_term + trace_term,
        mean_term=mean_term,
        trace_term=trace_term,
        method=method,
        eps=used_eps,
        sqrtm_max_imag=max_imag,
    )


def frechet_distance_from_features(features_a, features_b, **kwargs) -> FrechetResult:
    """Fit a Gaussian to each (N, D) feature set and return their Fréchet distance."""
    a, b = FeatureStats.from_features(features_a), FeatureStats.from_features(features_b)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov, **kwargs)


def _trace_sqrt_product_psd(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr((Σ_a Σ_b)^½) = tr((Σ_a^½ Σ_b Σ_a^½)^½): similar matrices, the right one PSD."""
    vals, vecs = np.linalg.eigh((cov_a + cov_a.T) / 2)
    root_a = (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    # Tiny negative eigenvalues are round-off of a PSD matrix; clipping them is exact up to that round-off.
    return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def _as_float64(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
