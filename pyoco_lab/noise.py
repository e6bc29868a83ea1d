"""Video noise priors of PYoCo (Ge et al., 2023, Section 4 "Correlated noise model").

Every prior draws a noise tensor shaped ``(batch, frames, channels, height, width)`` whose
per-frame marginal is exactly N(0, I) -- only the correlation *between frames* differs:

- ``iid``: independent frames, the naive extension of an image prior.
- ``mixed`` (eq. 3): eps^i = eps_shared + eps_ind^i with eps_shared ~ N(0, a²/(1+a²) I) and
  eps_ind^i ~ N(0, 1/(1+a²) I); corr(eps^i, eps^j) = a²/(1+a²) for i != j.
- ``progressive`` (eq. 4): eps^0 ~ N(0, I), eps^i = a/sqrt(1+a²) eps^{i-1} + eps_ind^i with
  eps_ind^i ~ N(0, 1/(1+a²) I); corr(eps^i, eps^j) = (a/sqrt(1+a²))^|i-j| (an AR(1) process).

``alpha`` lives in [0, inf]: alpha = 0 is i.i.d. noise; alpha = inf gives the same noise in every
frame (the "frozen video" limit of Section 5.2), computed without forming inf/inf. Finite
alpha never forms a² once it could overflow (past ~1e154): huge alpha is divided through,
a/sqrt(1+a²) = 1/sqrt(1+a⁻²), so alpha = 1e300 is the inf limit to float precision rather
than zero-variance noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from einops import einsum

KINDS = ("iid", "mixed", "progressive")


def validate_alpha(alpha: float) -> float:
    """Return alpha as a float, or raise ValueError if it is not in [0, inf]."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in [0, inf], got {alpha!r}") from None
    if math.isnan(value):
        raise ValueError("alpha is NaN; use a number in [0, inf] (0 = i.i.d., inf = identical frames)")
    if value < 0:
        raise ValueError(f"alpha must be >= 0 (0 = i.i.d., inf = identical frames), got {value}")
    return value


def validate_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown noise prior {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def _validate_video_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 5:
        raise ValueError(
            f"noise shape must be (batch, frames, channels, height, width), got {shape} with "
            f"{len(shape)} dims; for images add a frame axis of length 1"
        )
    if any(s <= 0 for s in shape):
        raise ValueError(f"every dimension of the noise shape must be positive, got {shape}")
    return shape


# Above this alpha the scales are computed from 1/alpha (alpha² would overflow past ~1e154). Below
# it the textbook form is kept, so every alpha in practical use gives bit-identical noise to
# before; at 1e100 both forms agree exactly (the shared scale is 1.0, the individual one 1/alpha).
_HUGE_ALPHA = 1e100


def shared_and_individual_scales(alpha: float) -> tuple[float, float]:
    """Standard deviations (a/sqrt(1+a²), 1/sqrt(1+a²)) of the shared and individual parts.

    Written so that alpha = inf gives (1, 0) instead of inf/inf = NaN. Their squares sum to 1,
    which is what keeps every frame's marginal at unit variance in eq. 3 and eq. 4.
    """
    alpha = validate_alpha(alpha)
    if math.isinf(alpha):
        return 1.0, 0.0
    if alpha > _HUGE_ALPHA:
        # Divide through by alpha: alpha² overflows to inf above ~1e154, which would give (0, 0)
        # -- zero-variance noise -- and NaN correlations. 1/alpha² only underflows towards 0.
        inverse = 1.0 / alpha
        norm = math.sqrt(1.0 + inverse * inverse)
        return 1.0 / norm, inverse / norm
    norm = math.sqrt(1.0 + alpha * alpha)
    return alpha / norm, 1.0 / norm


def progressive_mixing_matrix(num_frames: int, alpha: float) -> torch.Tensor:
    """Lower-triangular L (float64) with eps = L @ z for i.i.d. z, unrolling eq. 4.

    eps^i = r^i z^0 + s * sum_{1<=j<=i} r^(i-j) z^j with r = a/sqrt(1+a²), s = 1/sqrt(1+a²).
    Applying L in one einsum avoids a Python loop over frames.
    """
    r, s = shared_and_individual_scales(alpha)
    index = torch.arange(num_frames, dtype=torch.float64)
    lag = index[:, None] - index[None, :]
    # torch.pow(0., 0.) == 1, so alpha = 0 gives the identity; r = 1 (alpha = inf) gives ones.
    matrix = torch.where(lag >= 0, torch.pow(torch.tensor(r, dtype=torch.float64), lag.clamp(min=0)), 0.0)
    weights = torch.full((num_frames,), s, dtype=torch.float64)
    weights[0] = 1.0  # eps^0 ~ N(0, I) carries the full-variance z^0
    return matrix * weights[None, :]


def sample_noise(
    kind: str,
    shape: Sequence[int],
    alpha: float = 0.0,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Draw video noise of ``shape = (batch, frames, channels, height, width)`` from a prior.

    Reproducible for a given ``torch.Generator``. Every frame is marginally N(0, I).
    """
    validate_kind(kind)
    shape = _validate_video_shape(shape)
    alpha = validate_alpha(alpha)
    dtype = dtype or torch.get_default_dtype()
    batch, frames = shape[0], shape[1]
    if kind == "iid" or alpha == 0.0:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    shared_scale, individual_scale = shared_and_individual_scales(alpha)
    if kind == "mixed":  # eq. 3
        shared = torch.randn((batch, 1, *shape[2:]), generator=generator, device=device, dtype=dtype)
        if individual_scale == 0.0:
            return shared.expand(shape).clone()
        individual = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return shared_scale * shared + individual_scale * individual
    # progressive, eq. 4
    innovations = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    mixing = progressive_mixing_matrix(frames, alpha).to(device=innovations.device, dtype=dtype)
    return einsum(mixing, innovations, "f g, b g c h w -> b f c h w")


def sample_joint_noise(
    kind: str,
    shape: Sequence[int],
    alpha: float = 0.0,
    *,
    num_video_frames: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Noise for a joint image-video batch (Section 4; A.1 (7), after Ho et al.).

    The batch concatenates ``num_video_frames`` video frames and then independent images along
    the frame axis. The video part follows the prior; the image part is i.i.d., since images
    are unrelated to each other and to the video.
    """
    shape = _validate_video_shape(shape)
    if not 0 < num_video_frames <= shape[1]:
        raise ValueError(
            f"num_video_frames must be in [1, {shape[1]}] for shape {shape}, got {num_video_frames}"
        )
    video = sample_noise(
        kind, (shape[0], num_video_frames, *shape[2:]), alpha, generator=generator, device=device, dtype=dtype
    )
    num_images = shape[1] - num_video_frames
    if num_images == 0:
        return video
    images = torch.randn(
        (shape[0], num_images, *shape[2:]), generator=generator, device=video.device, dtype=video.dtype
    )
    return torch.cat([video, images], dim=1)


def frame_correlation(kind: str, num_frames: int, alpha: float = 0.0) -> torch.Tensor:
    """Closed-form correlation matrix (float64, num_frames x num_frames) between frames' noise."""
    validate_kind(kind)
    alpha = validate_alpha(alpha)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    identity = torch.eye(num_frames, dtype=torch.float64)
    if kind == "iid":
        return identity
    shared_scale, _ = shared_and_individual_scales(alpha)
    if kind == "mixed":
        off_diagonal = shared_scale**2  # a²/(1+a²), finite for every alpha
        return identity + off_diagonal * (1 - identity)
    lag = torch.arange(num_frames, dtype=torch.float64)
    lag = (lag[:, None] - lag[None, :]).abs()
    return torch.pow(torch.tensor(shared_scale, dtype=torch.float64), lag)


def correlation_by_distance(kind: str, num_frames: int, alpha: float = 0.0) -> torch.Tensor:
    """Closed-form correlation at frame distances 0 .. num_frames-1."""
    return frame_correlation(kind, num_frames, alpha)[0]


def empirical_frame_correlation(noise: torch.Tensor) -> torch.Tensor:
    """Correlation matrix between frames estimated from noise (B, F, ...), pooling batch and pixels.

    Second moments are taken about the known zero mean of every prior and normalised by each
    frame's own second moment; variances are checked separately by :func:`empirical_frame_variance`.
    """
    if noise.ndim < 3:
        raise ValueError(f"noise must be (batch, frames, ...), got shape {tuple(noise.shape)}")
    flat = noise.transpose(0, 1).reshape(noise.shape[1], -1).double()  # (F, B * pixels)
    second_moment = flat @ flat.T / flat.shape[1]
    scale = second_moment.diagonal().sqrt()
    return second_moment / (scale[:, None] * scale[None, :])


def empirical_frame_variance(noise: torch.Tensor) -> torch.Tensor:
    """Per-frame variance (F,) of noise (B, F, ...) about the known zero mean."""
    flat = noise.transpose(0, 1).reshape(noise.shape[1], -1).double()
    return (flat**2).mean(dim=1)


def fit_alpha(kind: str, distances: Sequence[float], correlations: Sequence[float]) -> float:
    """The alpha whose closed-form correlation best fits measured correlation vs frame distance.

    A data-driven alpha (the paper picks alpha by an FVD sweep instead, Fig. 7). Uses only
    distances >= 1. mixed: least squares for the constant c = a²/(1+a²); progressive: least
    squares for r in c(d) = r^d on a fine grid of r in [0, 1). Correlations <= 0 give alpha = 0.
    """
    validate_kind(kind)
    d = torch.as_tensor(distances, dtype=torch.float64)
    c = torch.as_tensor(correlations, dtype=torch.float64)
    keep = d >= 1
    d, c = d[keep], c[keep]
    if d.numel() == 0:
        raise ValueError("fit_alpha needs correlations at frame distance >= 1")
    if kind == "iid":
        return 0.0
    if kind == "mixed":
        shared = float(c.mean().clamp(0.0, 1.0 - 1e-9))
    else:
        grid = torch.linspace(0.0, 0.9999, 20001, dtype=torch.float64)
        errors = ((grid[:, None] ** d[None, :] - c[None, :]) ** 2).sum(dim=1)
        shared = float(grid[errors.argmin()]) ** 2
    # shared = a²/(1+a²)  =>  a = sqrt(shared / (1 - shared))
    return math.sqrt(shared / (1.0 - shared))


def alpha_name(alpha: float) -> str:
    """α as the lab writes it in file names, run labels and JSON keys: "0", "0.5", "2", "inf" (JSON has
    no Infinity)."""
    return "inf" if math.isinf(float(alpha)) else f"{float(alpha):g}"


@dataclass(frozen=True)
class NoisePrior:
    """A named prior (kind, alpha): what training, sampling and the explorer pass around."""

    kind: str = "iid"
    alpha: float = 0.0

    def __post_init__(self) -> None:
        validate_kind(self.kind)
        object.__setattr__(self, "alpha", validate_alpha(self.alpha))

    def sample(self, shape, *, generator=None, device=None, dtype=None) -> torch.Tensor:
        return sample_noise(self.kind, shape, self.alpha, generator=generator, device=device, dtype=dtype)

    def sample_joint(
        self, shape, *, num_video_frames, generator=None, device=None, dtype=None
    ) -> torch.Tensor:
        return sample_joint_noise(
            self.kind,
            shape,
            self.alpha,
            num_video_frames=num_video_frames,
            generator=generator,
            device=device,
            dtype=dtype,
        )

    def correlation(self, num_frames: int) -> torch.Tensor:
        return frame_correlation(self.kind, num_frames, self.alpha)

    @property
    def label(self) -> str:
        """For figures and captions: "i.i.d.", "mixed, α = 1", "progressive, α = ∞"."""
        if self.kind == "iid":
            return "i.i.d."
        return f"{self.kind}, α = {'∞' if math.isinf(self.alpha) else f'{self.alpha:.3g}'}"

    def __str__(self) -> str:
        return "iid" if self.kind == "iid" else f"{self.kind}(alpha={self.alpha:g})"
