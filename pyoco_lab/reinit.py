"""Low-frequency noise re-initialisation: sample, take the sample's noise back, keep its low frequencies.

FreeInit (Wu et al., "FreeInit: Bridging Initialization Gap in Video Diffusion Models", ECCV 2024) samples a
video, diffuses it back to the largest noise level, and starts again from noise whose *low* spatio-temporal
frequencies come from that re-noised sample and whose high frequencies are fresh:

    z' = IFFT3D( FFT3D(z_sample) · L  +  FFT3D(η) · H ),    η fresh noise, L a low-pass filter,

repeated for a few iterations (FreeInit: 3, Butterworth order 4, normalised stop frequencies
d_s = d_t = 0.25). The low band of a clip's noise decides its layout, and a temporal low-pass makes that
layout the same in every frame: frames start alike, the high band still differs from frame to frame. Every
iteration is one more sampling pass (and here one inversion), so the cost grows with the iterations.

Two changes for the EDM formulation (Section 3) and the lab's priors, each said where it is made:

* **Where the sample's noise comes from.** FreeInit re-noises with DDPM's forward process at t = T, where
  Stable Diffusion's schedule keeps √ᾱ_T ≈ 0.07 of the latent. EDM's σ_max = 80 keeps 1/80 of a signal of
  std 0.5: under 1% of the white noise's energy in the low band, so a re-noised sample would carry almost
  nothing of its layout. Here the noise map is the sample's ODE inversion (eq. 2 integrated from σ_min up to
  σ_max, :func:`pyoco_lab.edm.invert`) — the noise the deterministic sampler maps to that sample.
* **Variance.** FreeInit's H = 1 − L lowers the variance wherever 0 < L < 1 (FreqPrior, Yuan et al., ICLR
  2025, fixes this decay). Here H = √(1 − L²): two independent white inputs of unit variance give unit
  variance at every frequency, so the start noise stays N(0, I) in distribution where the inverted map is.

The fresh noise η is drawn from the prior the clip is sampled with (i.i.d., mixed or progressive, eqs. 3–4),
so the lab's priors and the re-initialisation combine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from pyoco_lab import edm

# Clips are inverted with Heun whatever sampled them: on Gaussian data (the exact denoiser of
# tests/test_reinit.py) a 6-step DEIS inversion returns noise of std 0.26 instead of 1 (its multistep
# extrapolation over the upward schedule's growing steps), Heun's 6-step one 1.23, 18 steps 1.04.
INVERSION_SOLVER = "heun"


@dataclass(frozen=True)
class Reinit:
    """How clips are re-initialised: ``iterations`` sampling passes in all (1 = none; FreeInit uses 3),
    the Butterworth low-pass's normalised stop frequencies in space and time (FreeInit's d_s, d_t) and
    its order."""

    iterations: int = 3
    spatial_stop: float = 0.25
    temporal_stop: float = 0.25
    order: int = 4

    def __post_init__(self):
        if self.iterations < 1:
            raise ValueError(
                f"re-initialisation needs at least 1 iteration (1 = none), got {self.iterations}"
            )
        for name in ("spatial_stop", "temporal_stop"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"the {name.replace('_', ' ')} frequency must be in (0, 1], got {value}")
        if self.order < 1:
            raise ValueError(f"the Butterworth order must be at least 1, got {self.order}")

    def record(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """``reinit3`` (or ``reinit3-s0.5-t0.25-o4`` when the filter is not FreeInit's default)."""
        default = Reinit(self.iterations)
        if self == default:
            return f"reinit{self.iterations}"
        return f"reinit{self.iterations}-s{self.spatial_stop:g}-t{self.temporal_stop:g}-o{self.order}"


def low_pass_filter(
    num_frames: int, height: int, width: int, *, spatial_stop: float, temporal_stop: float, order: int
) -> torch.Tensor:
    """The Butterworth low-pass L (F, 1, H, W) on the unshifted 3-D FFT grid, frequencies normalised to
    [−1, 1) per axis: L = 1 / (1 + (d² / d_s²)^n), d² = (f_t · d_s / d_t)² + f_h² + f_w² (FreeInit)."""
    f_t = 2 * torch.fft.fftfreq(num_frames, dtype=torch.float64) * (spatial_stop / temporal_stop)
    f_h = 2 * torch.fft.fftfreq(height, dtype=torch.float64)
    f_w = 2 * torch.fft.fftfreq(width, dtype=torch.float64)
    d2 = f_t[:, None, None] ** 2 + f_h[None, :, None] ** 2 + f_w[None, None, :] ** 2
    return (1.0 / (1.0 + (d2 / spatial_stop**2) ** order)).unsqueeze(1)


def mix_frequencies(
    low_source: torch.Tensor, high_source: torch.Tensor, low_pass: torch.Tensor
) -> torch.Tensor:
    """IFFT(FFT(low_source) · L + FFT(high_source) · √(1 − L²)) over (frames, height, width) of videos
    (B, F, C, H, W): the low band of one, the high band of the other, unit variance kept (FreqPrior)."""
    if low_source.shape != high_source.shape or low_source.ndim != 5:
        raise ValueError(
            f"frequency mixing needs two videos (B, F, C, H, W) of one shape, got "
            f"{tuple(low_source.shape)} and {tuple(high_source.shape)}"
        )
    dims = (1, 3, 4)
    low = torch.fft.fftn(low_source.double(), dim=dims)
    high = torch.fft.fftn(high_source.double(), dim=dims)
    filt = low_pass.to(low_source.device)
    mixed = low * filt + high * torch.sqrt((1.0 - filt**2).clamp_min(0.0))
    # L depends on |f| only, so the mix is Hermitian-symmetric and its inverse real (to rounding).
    return torch.fft.ifftn(mixed, dim=dims).real.to(low_source.dtype)


def sample_reinit(
    denoiser: edm.DenoiserFn,
    noise: torch.Tensor,
    fresh_noise: Callable[[], torch.Tensor],
    reinit: Reinit,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    **sampler_options,
) -> torch.Tensor:
    """Sample videos from ``noise`` (B, F, C, H, W) with ``reinit.iterations`` passes of :func:`edm.sample`;
    between passes the start noise becomes the last clips' inverted noise in the low band and
    ``fresh_noise()`` (a draw of the sampling prior, shaped like ``noise``) in the high band.

    One iteration is plain sampling. Each further one costs an inversion (Heun over the sampler's
    ``num_steps`` levels: 2 (steps − 1) denoiser calls) and a sampling pass; the sampling sweep records
    the wall time it took."""
    if noise.ndim != 5:
        raise ValueError(f"re-initialisation works on videos (B, F, C, H, W), got {tuple(noise.shape)}")
    _, frames, _, height, width = noise.shape
    low_pass = low_pass_filter(
        frames,
        height,
        width,
        spatial_stop=reinit.spatial_stop,
        temporal_stop=reinit.temporal_stop,
        order=reinit.order,
    )
    x0 = edm.sample(denoiser, noise, sampler=sampler, num_steps=num_steps, **sampler_options)
    for _ in range(reinit.iterations - 1):
        inverted = edm.invert(denoiser, x0, num_steps=num_steps, solver=INVERSION_SOLVER)
        fresh = fresh_noise()
        if fresh.shape != noise.shape:
            raise ValueError(f"fresh noise shaped {tuple(fresh.shape)}, the clips {tuple(noise.shape)}")
        start = mix_frequencies(inverted.to(noise.dtype), fresh.to(noise.device, noise.dtype), low_pass)
        x0 = edm.sample(denoiser, start, sampler=sampler, num_steps=num_steps, **sampler_options)
    return x0
