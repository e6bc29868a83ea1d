"""Classifier-free temporal statistics of generated videos.

They need no network, so they mean the same thing on every machine, and they separate the two failure
modes the paper's α sweep moves between (Sec. 5, Fig. 6-7): α → ∞ (identical noise per frame) gives
*frozen* videos — consecutive frames almost identical, motion energy near 0 — while α = 0 fine-tuning from
an image model tends to *flicker* — frames that change more than real video does. Compare each number
with the same statistic on real clips.

Videos are (B, F, C, H, W); any value range works, but compare sets in the same range (the lab uses [-1, 1]).
"""

from __future__ import annotations

import torch
from einops import rearrange

from pyoco_lab.stats import bootstrap_interval


def consecutive_frame_similarity(videos: torch.Tensor) -> torch.Tensor:
    """Per-video mean cosine similarity of frames t and t+1 (after removing each frame's mean), shape (B,).

    Centring makes it a correlation: a brightness offset shared by all pixels does not count as similarity.
    1 means frozen; real motion gives less; i.i.d. flicker between unrelated images gives ~0.
    """
    frames = rearrange(_check_video(videos).double(), "b f c h w -> b f (c h w)")
    frames = frames - frames.mean(dim=-1, keepdim=True)
    cos = torch.nn.functional.cosine_similarity(frames[:, 1:], frames[:, :-1], dim=-1, eps=1e-12)
    return cos.mean(dim=1)


def motion_energy(videos: torch.Tensor) -> torch.Tensor:
    """Per-video mean squared difference of consecutive frames, shape (B,). 0 for a frozen video."""
    x = _check_video(videos).double()
    return (x[:, 1:] - x[:, :-1]).pow(2).mean(dim=(1, 2, 3, 4))


def sample_diversity(videos: torch.Tensor) -> float:
    """Mean pairwise RMS distance between different videos of the set (0 if all samples are identical).

    A collapsed model (the paper notes "many repeated samples" at α = 0) scores lower than real clips do.
    """
    x = rearrange(_check_video(videos).double(), "b f c h w -> b (f c h w)")
    if x.shape[0] < 2:
        raise ValueError(f"sample diversity needs at least 2 videos, got {x.shape[0]}")
    dist2 = torch.cdist(x, x).pow(2) / x.shape[1]
    off_diagonal = ~torch.eye(x.shape[0], dtype=torch.bool)
    return float(dist2[off_diagonal].clamp_min(0).sqrt().mean())


def temporal_statistics(videos: torch.Tensor, *, intervals: bool = False) -> dict[str, float]:
    """All three statistics as floats (means over the set), keyed by the names used in tables and plots.

    With ``intervals``, ``frame-cosine-ci`` and ``motion-energy-ci`` add 95% bootstrap intervals over the
    videos (what a single-seed row reports, ``pyoco_lab.stats.condition_interval``).
    """
    cosine, energy = consecutive_frame_similarity(videos), motion_energy(videos)
    result = {
        "frame-cosine": float(cosine.mean()),
        "motion-energy": float(energy.mean()),
        "diversity": sample_diversity(videos),
    }
    if intervals and len(videos) >= 2:
        for name, values in (("frame-cosine", cosine), ("motion-energy", energy)):
            interval = bootstrap_interval(lambda x: float(x.mean()), values.numpy(), num_resamples=200)
            result[f"{name}-ci"] = [interval.low, interval.high]
    return result


def _check_video(videos: torch.Tensor) -> torch.Tensor:
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5:
        shape = tuple(videos.shape) if hasattr(videos, "shape") else type(videos).__name__
        raise ValueError(f"videos must be a tensor of shape (B, F, C, H, W), got {shape}")
    if videos.shape[1] < 2:
        raise ValueError(f"temporal statistics need at least 2 frames per video, got {videos.shape[1]}")
    return videos.detach().cpu()
