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

Every stage draws its starting noise from the same video noise prior (PYoCo's point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from pyoco_lab import edm


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
    """Base, interpolation and super-resolution denoisers (``edm.Denoiser`` around ``VideoUNet``)."""

    base: torch.nn.Module
    interpolation: torch.nn.Module
    sr_low: torch.nn.Module
    sr_high: torch.nn.Module
    base_frames: int = 16
    base_size: int = 64
    frameskip: int = 5
    known_per_window: int = 4
    sr_sizes: tuple[int, int] = (256, 1024)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int,
        *,
        text: dict | None = None,
        null_text: dict | None = None,
        guidance_scale: float = 1.0,
        noise: Callable[[tuple[int, ...], torch.Generator | None], torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        num_steps: tuple[int, int, int, int] = (18, 18, 18, 18),
        sampler: str = "heun",
        device=None,
        progress: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Sample a video through all four stages; returns every stage's output (values in ~[-1, 1]).

        ``text``: keyword arguments carrying the text (``text_embeddings``, ``text_mask``) per sample;
        ``null_text`` the unconditional ones for classifier-free guidance (default: no text).
        ``noise(shape, generator)`` draws unit-variance starting noise (default i.i.d.); pass e.g.
        ``lambda s, g: NoisePrior("progressive", 2.0).sample(s, generator=g)``.
        """
        text, null_text = text or {}, null_text or {}
        draw = noise or (lambda shape, g: torch.randn(shape, generator=g))

        def run(stage, denoiser, shape, reps=1, cond=None):
            kwargs, uncond = _repeat_text(text, reps), _repeat_text(null_text, reps)
            if cond is not None:
                kwargs, uncond = {**kwargs, "cond": cond}, {**uncond, "cond": cond}
            fn = edm.guided_denoiser(denoiser, guidance_scale, kwargs, uncond)
            x = draw(shape, generator).to(device)
            return edm.sample(fn, x, sampler=sampler, num_steps=num_steps[stage], progress=progress)

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
        high_cond = upsample_video(low, self.sr_sizes[1])
        high = run(3, self.sr_high, (b, frames, c, self.sr_sizes[1], self.sr_sizes[1]), cond=high_cond)
        return {"base": base, "interpolated": interpolated, "sr_low": low, "sr_high": high}
