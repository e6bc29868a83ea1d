"""Reusable figures of frame correlation: matrices as heatmaps, and correlation vs frame distance.

Each figure exists twice, from the same inputs: a matplotlib version (static PNGs for executed
notebooks, papers and ``figures/``) and a plotly version (interactive; the explorer wraps it in a
``go.FigureWidget`` and updates its traces in place as the sliders move).

Inputs are plain correlation matrices (F, F) -- closed form from :mod:`pyoco_lab.noise`, estimated
from sampled noise, or cosine similarities of inverted noise maps -- so the same functions serve
the prior explorer, the inversion playground and the analysis notebooks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from pyoco_lab.fileio import publish_file
from pyoco_lab.media import to_uint8_frames

# A diverging map centred on 0: i.i.d. noise is white, shared noise red, anti-correlation blue.
CMAP = "RdBu_r"
PLOTLY_SCALE = "RdBu_r"


def _as_numpy(matrix) -> np.ndarray:
    array = matrix.detach().cpu().double().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    return array.astype(np.float64)


def _square(matrix, name: str) -> np.ndarray:
    array = _as_numpy(matrix)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square (frames, frames) matrix, got shape {array.shape}")
    return array


def mean_by_distance(matrix) -> np.ndarray:
    """Average of a (F, F) correlation matrix over each diagonal: entry d is the mean corr at |i-j| = d.

    For a stationary prior (mixed, progressive) this is exactly the correlation-vs-distance curve;
    for an estimate it pools all frame pairs at the same distance, which reduces its variance.
    """
    array = _square(matrix, "matrix")
    return np.array([np.diagonal(array, offset=d).mean() for d in range(array.shape[0])])


def cosine_similarity_matrix(maps: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (F, F) between per-frame maps (F, ...) -- e.g. inverted noise (Fig. 2, Table 1)."""
    if maps.ndim < 2:
        raise ValueError(f"maps must be (frames, ...), got shape {tuple(maps.shape)}")
    flat = torch.nn.functional.normalize(maps.reshape(maps.shape[0], -1).double(), dim=1)
    return flat @ flat.T


# ----------------------------------------------------------------------------------------------
# matplotlib


def correlation_figure(
    matrices: Mapping[str, object],
    curves: Mapping[str, object] | None = None,
    *,
    title: str = "",
    vmin: float = -1.0,
    vmax: float = 1.0,
):
    """Heatmaps of the named (F, F) matrices side by side, then correlation vs frame distance.

    ``curves`` maps a label to a 1-D curve indexed by distance; by default every matrix
    contributes its :func:`mean_by_distance`. Returns a matplotlib Figure.
    """
    if not matrices:
        raise ValueError("correlation_figure needs at least one matrix")
    arrays = {name: _square(m, name) for name, m in matrices.items()}
    if curves is None:
        curves = {name: mean_by_distance(a) for name, a in arrays.items()}
    fig, axes = plt.subplots(1, len(arrays) + 1, figsize=(3.6 * (len(arrays) + 1), 3.4), layout="constrained")
    image = None
    for ax, (name, array) in zip(axes, arrays.items(), strict=False):
        image = ax.imshow(array, cmap=CMAP, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("frame j")
        ax.set_ylabel("frame i")
    fig.colorbar(image, ax=axes[: len(arrays)], shrink=0.8, label="correlation")
    plot_distance_curves(curves, ax=axes[-1])
    if title:
        fig.suptitle(title)
    return fig


def plot_distance_curves(curves: Mapping[str, object], *, ax=None):
    """Correlation vs frame distance, one line per named curve; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.2), layout="constrained")
    for name, curve in curves.items():
        values = _as_numpy(curve).reshape(-1)
        ax.plot(np.arange(len(values)), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("frame distance |i - j|")
    ax.set_ylabel("correlation")
    ax.set_ylim(-0.1, 1.05)
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("correlation vs distance", fontsize=10)
    return ax


def noise_frames_figure(video, *, max_frames: int = 8, title: str = "", value_range=(-3.0, 3.0)):
    """A row of frames (F, C, H, W) as a static strip, e.g. the noise "video" or inverted noise maps."""
    frames = to_uint8_frames(video, value_range)[:max_frames]
    fig, axes = plt.subplots(1, len(frames), figsize=(1.6 * len(frames), 1.9), layout="constrained")
    for i, (ax, frame) in enumerate(zip(np.atleast_1d(axes), frames, strict=False)):
        ax.imshow(frame, interpolation="nearest")
        ax.set_title(f"frame {i}", fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def image_grid_figure(
    rows,
    row_labels,
    column_labels,
    *,
    title: str = "",
    cuts=(),
    colorbar: tuple[str, float, float] | None = None,
    cell: float = 0.85,
):
    """Rows of frames, each frame large enough to see: ``rows`` are uint8 (F, H, W, 3) arrays, one per
    row (F may differ); ``column_labels`` one list of F strings per row (e.g. the frames' numbers in the
    video); ``cuts`` per row the columns that start a new shot (a red bar is drawn before them);
    ``colorbar``: (label, low, high) of a grey scale that says what a pixel's value means."""
    columns = max(len(row) for row in rows)
    fig, axes = plt.subplots(
        len(rows),
        columns,
        figsize=(cell * columns + 1.6 + (0.9 if colorbar else 0), cell * len(rows) + 0.35 * len(rows) + 0.5),
        squeeze=False,
        layout="constrained",
    )
    for r, (row, label) in enumerate(zip(rows, row_labels, strict=True)):
        row_cuts = set(cuts[r]) if r < len(cuts) else set()
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(row):
                ax.set_axis_off()
                continue
            ax.imshow(row[c], interpolation="nearest")
            cut = c in row_cuts
            ax.set_title(column_labels[r][c], fontsize=7, color="crimson" if cut else "black", pad=2)
            if cut:  # a red frame around the first frame of a new shot, and "cut" above it
                for spine in ax.spines.values():
                    spine.set_edgecolor("crimson")
                    spine.set_linewidth(2.5)
            if c == 0:
                ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    if colorbar:
        name, low, high = colorbar
        scale = plt.cm.ScalarMappable(cmap="gray", norm=plt.Normalize(low, high))
        bar = fig.colorbar(scale, ax=axes, shrink=0.8, fraction=0.02, pad=0.01)
        bar.set_label(name, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return fig


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure (PNG/SVG/PDF by suffix) atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix, delete=False
    ) as f:
        tmp = f.name
    try:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
        publish_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------------------------
# plotly


def correlation_figure_plotly(
    matrices: Mapping[str, object],
    curves: Mapping[str, object] | None = None,
    *,
    title: str = "",
    height: int = 340,
):
    """The plotly twin of :func:`correlation_figure`: heatmaps (traces 0..n-1), then one line per curve.

    The trace order is fixed so that a ``go.FigureWidget`` made from it can be updated in place.
    """
    if not matrices:
        raise ValueError("correlation_figure_plotly needs at least one matrix")
    arrays = {name: _square(m, name) for name, m in matrices.items()}
    if curves is None:
        curves = {name: mean_by_distance(a) for name, a in arrays.items()}
    names = list(arrays)
    fig = make_subplots(
        rows=1,
        cols=len(names) + 1,
        subplot_titles=[*names, "correlation vs distance"],
        horizontal_spacing=0.07,
    )
    for col, name in enumerate(names, start=1):
        fig.add_trace(
            go.Heatmap(
                z=arrays[name],
                zmin=-1,
                zmax=1,
                colorscale=PLOTLY_SCALE,
                showscale=col == len(names),
                colorbar={"len": 0.9, "x": 1.02, "thickness": 12},
                name=name,
                hovertemplate="i=%{y}, j=%{x}: %{z:.3f}<extra>" + name + "</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    for name, curve in curves.items():
        values = _as_numpy(curve).reshape(-1)
        fig.add_trace(
            go.Scatter(x=np.arange(len(values)), y=values, mode="lines+markers", name=name),
            row=1,
            col=len(names) + 1,
        )
    fig.update_xaxes(title_text="frame distance", row=1, col=len(names) + 1)
    fig.update_yaxes(range=[-0.1, 1.05], row=1, col=len(names) + 1)
    fig.update_layout(
        height=height,
        margin={"l": 30, "r": 10, "t": 50 if title else 35, "b": 30},
        title=title or None,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
