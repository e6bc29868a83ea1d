"""The four-network cascade of Figure 3: base -> temporal interpolation -> SR-256 -> SR-1024.

- The base model samples ``base_frames`` (16) frames at 64x64 that are every ``frameskip``-th
  (5th) frame of the final video: frames {1, 6, 11, ..., 76}.
- The temporal interpolation model (A.1 (3)) fills in the frames between them. It works on
  windows of ``(known - 1) * frameskip + 1`` = 16 frames holding 4 known frames at positions
  0, 5, 10, 15 and zeros elsewhere, given as extra input channels; consecutive windows share
  their boundary frame, so 5 windows cover (16 - 1) * 5 + 1 = 76 frames.
- Each super-resolution model is conditioned on the previous video upsampled bilinearly to its
  output size (extra input channels) and samples all frames jointly, its 3x1x1 temporal
  convolutions keeping them consistent. SR-1024 was trained on 256x256 patches; being convolutional
  with cross-attention only, it is applied to whole frames here.

Every stage draws its starting noise -- and the stochastic sampler's churn noise -- from a video
noise prior (PYoCo's point): one given for all stages, one per stage, or (``training.load_cascade``)
each stage's own training prior. There is no silent i.i.d. fallback.

This module takes denoisers; loading trained runs into a cascade is training's
(``pyoco_lab.training.load_cascade``), so models never import training.

Training each stage (``pyoco-lab train --stage base|interpolation|sr``) uses the conditioning built
here, so a trained checkpoint plugs into :class:`Cascade`: :func:`interpolation_condition` is window 0
of :func:`interpolation_windows`, and :func:`sr_condition` is a clip taken down to the previous
stage's size and back up with :func:`upsample_video`, exactly what sampling feeds the SR model. Not
implemented: noise-conditioning augmentation of the SR condition (Imagen / eDiff-I corrupt the
low-resolution input with noise of a random level during training and pass that level to the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from pyoco_lab import devices, edm
from pyoco_lab.noise import NoisePrior

KNOWN_PER_WINDOW = 4  # A.1 (3): 4 real frames infilled with zero frames in a 16-frame window
SR_FACTOR = 4  # each super-resolution stage upsamples 4x: 64 -> 256 -> 1024 (Fig. 3)


def interpolation_frameskip(num_frames: int, known_per_window: int = KNOWN_PER_WINDOW) -> int:
    """Frames from one known frame to the next in an interpolation window of ``num_frames`` (16 -> 5)."""
    step = known_per_window - 1
    if num_frames < 1 + 2 * step or (num_frames - 1) % step:
        raise ValueError(
            f"an interpolation window of {num_frames} frames cannot hold {known_per_window} known frames "
            f"with frames to fill between them; use 1 + {step}*k frames with k >= 2 "
            f"({', '.join(str(1 + step * k) for k in range(2, 6))}; the paper: 16)"
        )
    return (num_frames - 1) // step


def interpolation_condition(window: torch.Tensor, frameskip: int) -> torch.Tensor:
    """The interpolation model's condition for a window (B, N, C, H, W): its every ``frameskip``-th
    frame with zeros in between (A.1 (3)) -- what :func:`interpolation_windows` builds from the
    base model's frames at sampling time."""
    cond = torch.zeros_like(window)
    cond[:, ::frameskip] = window[:, ::frameskip]
    return cond


def interpolation_windows(known: torch.Tensor, frameskip: int, known_per_window: int) -> torch.Tensor:
    """(B, K, C, H, W) known frames -> conditioning windows (B, W, N, C, H, W), zeros between knowns.

    N = (known_per_window - 1) * frameskip + 1 and window w holds known frames
    w*(known_per_window-1) ... at positions 0, frameskip, 2*frameskip, ...
    """
    b, k = known.shape[:2]
    step = known_per_window - 1
    if step < 1 or (k - 1) % step:
        raise ValueError(
            f"{k} known frames cannot be split into windows of {known_per_window} sharing their ends; "
            f"use 1 + m*{step} base frames (16 for the paper's 4-frame windows)"
        )
    num_windows = (k - 1) // step
    index = torch.arange(num_windows)[:, None] * step + torch.arange(known_per_window)  # (W, K_w)
    windows = known.new_zeros(b, num_windows, step * frameskip + 1, *known.shape[2:])
    windows[:, :, ::frameskip] = known[:, index]
    return windows


def stitch_windows(windows: torch.Tensor) -> torch.Tensor:
    """(B, W, N, ...) overlapping windows -> (B, W*(N-1)+1, ...): each window but the last drops its end."""
    body = rearrange(windows[:, :, :-1], "b w n ... -> b (w n) ...")
    return torch.cat([body, windows[:, -1, -1:]], dim=1)


def upsample_video(video: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear upsampling of every frame of (B, F, C, H, W) to size x size (SR conditioning)."""
    b = video.shape[0]
    frames = rearrange(video, "b f c h w -> (b f) c h w")
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return rearrange(frames, "(b f) c h w -> b f c h w", b=b)


def downsample_video(video: torch.Tensor, size: int) -> torch.Tensor:
    """Area (box-filter) downsampling of every frame of (B, F, C, H, W) to size x size -- the filter
    the embedded dataset is made with, so a downsampled clip looks like the lower stage's data."""
    b = video.shape[0]
    frames = rearrange(video, "b f c h w -> (b f) c h w")
    frames = F.interpolate(frames, size=(size, size), mode="area")
    return rearrange(frames, "(b f) c h w -> b f c h w", b=b)


def sr_condition(x: torch.Tensor, low_size: int) -> torch.Tensor:
    """The SR model's condition for clean frames x (B, F, C, H, W) or (B, C, H, W): x at the previous
    stage's size ``low_size``, upsampled back with :func:`upsample_video` (as sampling feeds it)."""
    video = x if x.ndim == 5 else x[:, None]
    cond = upsample_video(downsample_video(video, low_size), video.shape[-1])
    return cond if x.ndim == 5 else cond[:, 0]


def _repeat_text(text: dict, times: int) -> dict:
    """Repeat every per-sample conditioning tensor `times` times (one copy per interpolation window)."""

    def rep(v):
        if v is None:
            return None
        if torch.is_tensor(v):
            return repeat(v, "b ... -> (b t) ...", t=times)
        return [rep(t) for t in v]

    return {k: rep(v) for k, v in text.items()}


@dataclass
class Cascade:
    """Base, interpolation and super-resolution denoisers (``edm.Denoiser`` around ``VideoUNet``).

    ``sr_high=None`` stops after the first super-resolution stage. ``priors``: each stage's default
    noise prior (set by ``training.load_cascade`` to the runs' own); without it every call names its prior.
    """

    base: torch.nn.Module
    interpolation: torch.nn.Module
    sr_low: torch.nn.Module
    sr_high: torch.nn.Module | None = None
    base_frames: int = 16
    base_size: int = 64
    frameskip: int = 5
    known_per_window: int = KNOWN_PER_WINDOW
    sr_sizes: tuple[int, ...] = (256, 1024)
    priors: tuple[NoisePrior, ...] | None = None

    def _stage_priors(self, prior, stages: int) -> tuple[NoisePrior, ...]:
        if prior is None:
            prior = self.priors
        if prior is None:
            raise ValueError(
                "the cascade needs a noise prior: pass prior=NoisePrior(kind, alpha) (or one per stage), "
                "or load it with training.load_cascade to use each run's own"
            )
        priors = (prior,) * stages if isinstance(prior, NoisePrior) else tuple(prior)
        if len(priors) < stages or not all(isinstance(p, NoisePrior) for p in priors):
            raise ValueError(f"pass one NoisePrior, or one per stage ({stages}), got {prior!r}")
        return priors[:stages]

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int,
        *,
        text: dict | None = None,
        null_text: dict | None = None,
        guidance_scale: float = 1.0,
        prior: NoisePrior | Sequence[NoisePrior] | None = None,
        generator: torch.Generator | None = None,
        num_steps: tuple[int, ...] = (18, 18, 18, 18),
        sampler: str = "heun",
        sampler_options: dict | None = None,
        device=None,
        progress: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Sample a video through every stage; returns every stage's output (values in ~[-1, 1]).

        ``text``: keyword arguments carrying the text (``text_embeddings``, ``text_mask``) per sample;
        ``null_text`` the unconditional ones for classifier-free guidance (default: no text).
        ``prior``: the noise prior of every stage, or one per stage (base, interpolation, SR...);
        required unless the cascade has ``priors`` (``training.load_cascade``). It draws each stage's
        starting noise and, with ``sampler="stochastic"``, its churn noise
        (``edm.prior_noise_sampler``). ``sampler_options`` go to the sampler (e.g. ``s_churn``).
        """
        text, null_text = text or {}, null_text or {}
        # Sampling runs where the models are (``device`` overrides); noise is drawn where the
        # generator lives and moved there (devices.draw_device), start and churn noise alike.
        device = devices.device_of(self.base) if device is None else torch.device(device)
        stages = 4 if self.sr_high is not None else 3
        priors = self._stage_priors(prior, stages)
        options = dict(sampler_options or {})
        if "noise_sampler" in options:
            raise ValueError("the churn noise follows each stage's prior; pass prior=, not a noise_sampler")

        def run(stage, denoiser, shape, reps=1, cond=None):
            kwargs, uncond = _repeat_text(text, reps), _repeat_text(null_text, reps)
            if cond is not None:
                kwargs, uncond = {**kwargs, "cond": cond}, {**uncond, "cond": cond}
            fn = edm.guided_denoiser(denoiser, guidance_scale, kwargs, uncond)
            where = devices.draw_device(generator, device)
            x = priors[stage].sample(shape, generator=generator, device=where).to(device)
            stage_options = dict(options)
            if sampler == "stochastic":
                stage_options["noise_sampler"] = edm.prior_noise_sampler(priors[stage], generator)
            return edm.sample(
                fn, x, sampler=sampler, num_steps=num_steps[stage], progress=progress, **stage_options
            )

        b, c = batch_size, 3
        base = run(0, self.base, (b, self.base_frames, c, self.base_size, self.base_size))
        windows = interpolation_windows(base, self.frameskip, self.known_per_window)
        nw, n = windows.shape[1:3]
        cond = rearrange(windows, "b w n ... -> (b w) n ...")
        filled = run(
            1, self.interpolation, (b * nw, n, c, self.base_size, self.base_size), reps=nw, cond=cond
        )
        filled = rearrange(filled, "(b w) n ... -> b w n ...", b=b)
        # The known frames are exact: keep them rather than their re-generated copies.
        filled[:, :, :: self.frameskip] = windows[:, :, :: self.frameskip]
        interpolated = stitch_windows(filled)
        frames = interpolated.shape[1]
        low_cond = upsample_video(interpolated, self.sr_sizes[0])
        low = run(2, self.sr_low, (b, frames, c, self.sr_sizes[0], self.sr_sizes[0]), cond=low_cond)
        if self.sr_high is None:
            return {"base": base, "interpolated": interpolated, "sr_low": low}
        high_cond = upsample_video(low, self.sr_sizes[1])
        high = run(3, self.sr_high, (b, frames, c, self.sr_sizes[1], self.sr_sizes[1]), cond=high_cond)
        return {"base": base, "interpolated": interpolated, "sr_low": low, "sr_high": high}
