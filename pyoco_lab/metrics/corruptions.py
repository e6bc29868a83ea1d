"""Corruptions of real frames and clips: the controls every yardstick must rank below real.

A yardstick that cannot tell real frames from these cannot judge a generator either (issue #22). Each
keeps one property of real data and breaks another, so a failure says what the yardstick is blind to:

frames (N, 3, H, W) in [−1, 1]:
* ``noise``: Gaussian noise with the set's per-channel mean and std (right colour statistics, no image);
* ``shuffled pixels``: each frame's pixel positions permuted (right colour histogram, no structure);
* ``flat colour``: each frame replaced by its own mean colour (right average colour, no content);
* ``blur 4x4``: 4×4 average-pooled and bilinearly upsampled (right layout, no detail);

clips (N, F, 3, H, W): ``blurred`` — every frame blurred as above: real motion, no content (the
"content-free smooth motion" a motion-driven clip metric cannot see). The time-axis controls (frozen,
shuffled, flicker) live with the clip controls in ``metrics.controls``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FRAME_CORRUPTIONS = {
    "noise": "Gaussian noise with the real frames' channel mean and std",
    "shuffled pixels": "each frame's pixels in a random order",
    "flat colour": "each frame replaced by its mean colour",
    "blur 4x4": "4x4 average pooling, bilinear upsampling",
}


def blur(frames: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """``factor``×``factor`` average pooling and bilinear upsampling of (..., 3, H, W)."""
    shape = frames.shape
    flat = frames.reshape(-1, *shape[-3:]).float()
    small = F.avg_pool2d(flat, factor)
    return F.interpolate(small, size=shape[-2:], mode="bilinear", align_corners=False).reshape(shape)


def corrupt_frames(frames: torch.Tensor, kind: str, *, seed: int = 0) -> torch.Tensor:
    """The ``kind`` corruption (a key of :data:`FRAME_CORRUPTIONS`) of frames (N, 3, H, W)."""
    if kind not in FRAME_CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(FRAME_CORRUPTIONS)}")
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must have shape (N, 3, H, W), got {tuple(frames.shape)}")
    frames = frames.float()
    generator = torch.Generator().manual_seed(seed)
    if kind == "noise":
        mean = frames.mean(dim=(0, 2, 3), keepdim=True)
        std = frames.std(dim=(0, 2, 3), keepdim=True)
        return (mean + std * torch.randn(frames.shape, generator=generator)).clamp(-1, 1)
    if kind == "shuffled pixels":
        n, c, h, w = frames.shape
        order = torch.argsort(torch.rand((n, h * w), generator=generator), dim=1)
        flat = frames.flatten(2)
        return torch.gather(flat, 2, order[:, None, :].expand(n, c, h * w)).reshape(frames.shape)
    if kind == "flat colour":
        return frames.mean(dim=(2, 3), keepdim=True).expand_as(frames).clone()
    return blur(frames)
