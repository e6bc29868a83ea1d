"""Pictures of optical flow: the colour code of the Middlebury flow benchmark (Baker et al., IJCV 2011:
hue = direction, saturation = speed) and a contact sheet of clips with their flow drawn beside them."""

from __future__ import annotations

import colorsys

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["clip_flow_figure", "flow_to_rgb"]


def flow_to_rgb(flow: torch.Tensor | np.ndarray, max_speed: float | None = None) -> np.ndarray:
    """(H, W, 3) float in [0, 1] of a (2, H, W) flow in pixels: hue the direction (right red, down
    yellow-green, left cyan, up violet), saturation the speed (white = still; full at ``max_speed``,
    by default the largest speed in the picture)."""
    flow = np.asarray(flow, dtype=np.float64)
    dx, dy = flow[0], flow[1]
    speed = np.hypot(dx, dy)
    top = max_speed if max_speed is not None else max(float(speed.max()), 1e-6)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    saturation = np.clip(speed / top, 0, 1)
    to_rgb = np.vectorize(lambda h, s: colorsys.hsv_to_rgb(h, s, 1.0), otypes=[float, float, float])
    return np.stack(to_rgb(hue, saturation), axis=-1)


def clip_flow_figure(
    clips: torch.Tensor, flows: torch.Tensor, titles: list[str], *, frames_shown: int = 4, arrows: int = 8
):
    """One row per clip: ``frames_shown`` frames spread over the clip, then the flow of its middle frame
    in the colour code with arrows on top (every ``size / arrows`` pixels, length = the motion to the
    next frame, magnified 2x). ``clips`` (B, F, 3, H, W) in [0, 1], ``flows`` (B, F - 1, 2, H, W)."""
    count, length = clips.shape[:2]
    size = clips.shape[-1]
    picks = np.linspace(0, length - 1, frames_shown).round().astype(int)
    middle = (length - 1) // 2
    fig, axes = plt.subplots(
        count, frames_shown + 1, figsize=(1.6 * (frames_shown + 1), 1.7 * count), squeeze=False
    )
    step = max(size // arrows, 1)
    ys, xs = np.mgrid[step // 2 : size : step, step // 2 : size : step]
    for row in range(count):
        for col, t in enumerate(picks):
            axes[row, col].imshow(clips[row, t].permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, col].set_title(f"frame {t}" if row == 0 else "", fontsize=7)
        flow = flows[row, middle].numpy()
        ax = axes[row, -1]
        ax.imshow(flow_to_rgb(flow))
        ax.quiver(
            xs,
            ys,
            flow[0][ys, xs] * 2,
            flow[1][ys, xs] * 2,
            angles="xy",
            scale_units="xy",
            scale=1,
            width=0.012,
        )
        ax.set_title(f"flow {middle}->{middle + 1}" if row == 0 else "", fontsize=7)
        axes[row, 0].set_ylabel(titles[row], fontsize=6, rotation=0, ha="right", va="center")
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    return fig
