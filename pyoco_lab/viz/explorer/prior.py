"""The "noise prior" tab: prior kind, alpha, frames, seed -> frame correlation and the noise video.

- :func:`prior_matrices` -- closed-form and empirical frame correlation plus one noise video (no widgets).
- :func:`prior_figure`, :func:`alpha_sweep_figure` -- static matplotlib twins for executed notebooks.
- :class:`PriorExplorer` -- the live panel: plotly heatmaps and correlation vs frame distance,
  the noise "video" (a GIF), a readout whose JSON state the browser test reads. Other panels
  (e.g. :class:`~pyoco_lab.viz.explorer.generate.GeneratePanel`) read its kind, alpha and seed
  and may subscribe to ``listeners``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import ipywidgets as w
import matplotlib.pyplot as plt
import plotly.graph_objects as go
import torch

from pyoco_lab import noise as noise_lib
from pyoco_lab.viz.explorer.common import NOISE_RANGE, AlphaControl, _state_html, format_alpha, parse_alpha
from pyoco_lab.viz.figures import (
    correlation_figure,
    correlation_figure_plotly,
    mean_by_distance,
    plot_distance_curves,
)
from pyoco_lab.viz.video import gif_bytes

# ----------------------------------------------------------------------------------------------
# Computations (no widgets)


def prior_matrices(
    kind: str,
    alpha: float,
    num_frames: int,
    seed: int = 0,
    *,
    batch: int = 4,
    channels: int = 3,
    resolution: int = 32,
) -> dict:
    """Closed-form and empirical frame correlation of a prior, plus one noise video (F, C, H, W).

    The empirical matrix pools batch, channels and pixels (``batch * channels * resolution²``
    values per frame), so with the defaults its entries are within ~0.02 of the closed form.
    """
    alpha = parse_alpha(alpha)
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 to show correlation between frames, got {num_frames}")
    generator = torch.Generator().manual_seed(int(seed))
    sample = noise_lib.sample_noise(
        kind, (batch, num_frames, channels, resolution, resolution), alpha, generator=generator
    )
    closed = noise_lib.frame_correlation(kind, num_frames, alpha)
    empirical = noise_lib.empirical_frame_correlation(sample)
    return {"closed": closed, "empirical": empirical, "noise": sample[0]}


def prior_figure(kind: str, alpha: float | str, num_frames: int, seed: int = 0):
    """Static (matplotlib) twin of the live prior view: (figure, :func:`prior_matrices` result)."""
    result = prior_matrices(kind, alpha, num_frames, seed)
    title = (
        f"{kind} prior, α = {format_alpha(parse_alpha(alpha))}, {num_frames} frames (empirical: seed {seed})"
    )
    figure = correlation_figure(
        {"closed form": result["closed"], "empirical": result["empirical"]}, title=title
    )
    return figure, result


def alpha_sweep_figure(alphas: Sequence[float | str], num_frames: int = 16):
    """Closed-form correlation vs frame distance for several alphas, mixed (eq. 3) and progressive (eq. 4)."""
    alphas = [parse_alpha(a) for a in alphas]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained", sharey=True)
    for ax, kind in zip(axes, ("mixed", "progressive"), strict=True):
        curves = {
            f"α = {format_alpha(a)}": noise_lib.correlation_by_distance(kind, num_frames, a) for a in alphas
        }
        plot_distance_curves(curves, ax=ax)
        ax.set_title(f"{kind} prior", fontsize=10)
    return figure


# ----------------------------------------------------------------------------------------------
# The panel


class PriorExplorer:
    """Live view of a noise prior; ``display(explorer.widget)`` in a notebook.

    ``state`` (a dict, mirrored as JSON into the ``readout`` widget) holds the current kind,
    alpha, frames, seed and the adjacent-frame correlation (closed form and empirical).
    """

    def __init__(
        self,
        kind: str = "progressive",
        alpha: float | str = 2.0,
        num_frames: int = 16,
        seed: int = 0,
        *,
        batch: int = 4,
        resolution: int = 32,
        fps: float = 8.0,
        scale: int = 4,
    ):
        noise_lib.validate_kind(kind)
        alpha = parse_alpha(alpha)
        self.batch, self.resolution, self.fps, self.scale = batch, resolution, fps, scale
        self.listeners: list[Callable[[dict], None]] = []
        self.kind = w.ToggleButtons(options=noise_lib.KINDS, value=kind, description="prior")
        self.alpha_control = AlphaControl(alpha)
        self.alpha_slider, self.alpha_mode = self.alpha_control.slider, self.alpha_control.mode
        self.num_frames = w.IntSlider(value=num_frames, min=2, max=32, description="frames")
        self.seed = w.IntText(value=seed, description="seed", layout=w.Layout(width="160px"))
        self.readout = w.HTML()
        self.readout.add_class("pyoco-readout")
        self.noise_video = w.Image(format="gif", layout=w.Layout(width=f"{resolution * scale}px"))
        self.noise_video.add_class("pyoco-noise-video")
        first = prior_matrices(kind, alpha, num_frames, seed, batch=batch, resolution=resolution)
        self.figure = go.FigureWidget(self._figure(first))
        self.state: dict = {}
        self._show(first)

        self.alpha_control.observe(self.update)
        for control in (self.kind, self.num_frames, self.seed):
            control.observe(self.update, names="value")
        video_box = w.VBox([w.HTML("<b>noise video</b> (sample 0, ±3σ)"), self.noise_video])
        self.widget = w.VBox(
            [
                w.HBox([self.kind, self.seed]),
                self.alpha_control.widget,
                self.num_frames,
                self.readout,
                w.HBox([self.figure, video_box]),
            ]
        )

    @property
    def alpha(self) -> float:
        return self.alpha_control.value

    def _figure(self, result: dict):
        closed = result["closed"]
        curves = {
            "closed form": mean_by_distance(closed),
            "empirical": mean_by_distance(result["empirical"]),
        }
        fig = correlation_figure_plotly({"closed form": closed, "empirical": result["empirical"]}, curves)
        fig.update_layout(width=760)
        return fig

    def update(self, change=None) -> dict:
        """Recompute for the current controls and refresh every view; returns the new state."""
        result = prior_matrices(
            self.kind.value,
            self.alpha,
            self.num_frames.value,
            self.seed.value,
            batch=self.batch,
            resolution=self.resolution,
        )
        self._show(result)
        return self.state

    def _show(self, result: dict) -> None:
        closed, empirical = result["closed"], result["empirical"]
        frames = closed.shape[0]
        with self.figure.batch_update():
            self.figure.data[0].z = closed.numpy()
            self.figure.data[1].z = empirical.numpy()
            for trace, matrix in zip(self.figure.data[2:4], (closed, empirical), strict=True):
                trace.x = list(range(frames))
                trace.y = mean_by_distance(matrix)
        self.noise_video.value = gif_bytes(result["noise"], fps=self.fps, value_range=NOISE_RANGE)
        alpha = self.alpha
        self.state = {
            "kind": self.kind.value,
            "alpha": "inf" if math.isinf(alpha) else alpha,
            "num_frames": frames,
            "seed": int(self.seed.value),
            "adjacent_closed": round(float(closed[0, 1]), 6),
            "adjacent_empirical": round(float(empirical[0, 1]), 6),
            "updated": time.time(),
        }
        text = (
            f"{self.kind.value}, α = {format_alpha(alpha)}, {frames} frames: corr(frame i, i+1) = "
            f"{float(closed[0, 1]):.3f} closed form, {float(empirical[0, 1]):.3f} measured"
        )
        self.readout.value = _state_html(self.state, text)
        for listener in self.listeners:
            listener(self.state)
