"""Figures specific to the reproduction notebooks (the generic ones live in :mod:`pyoco_lab.viz`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from pyoco_lab.viz.figures import CMAP, mean_by_distance


def _alpha_label(alpha: float) -> str:
    return "∞" if math.isinf(alpha) else f"{alpha:g}"


def prior_matrix_grid(
    matrices: Mapping[tuple[str, float], tuple], kinds: Sequence[str], alphas: Sequence[float]
):
    """Empirical frame-correlation matrices, one row per prior kind, one column per alpha."""
    fig, axes = plt.subplots(
        len(kinds),
        len(alphas),
        figsize=(1.9 * len(alphas) + 1, 2.0 * len(kinds)),
        layout="constrained",
        squeeze=False,
    )
    image = None
    for row, kind in enumerate(kinds):
        for col, alpha in enumerate(alphas):
            ax = axes[row, col]
            _, empirical = matrices[(kind, float(alpha))]
            image = ax.imshow(np.asarray(empirical), cmap=CMAP, vmin=-1, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"α = {_alpha_label(alpha)}", fontsize=9)
            if col == 0:
                ax.set_ylabel(kind, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="empirical correlation")
    return fig


def prior_distance_figure(
    matrices: Mapping[tuple[str, float], tuple], kinds: Sequence[str], alphas: Sequence[float]
):
    """Correlation vs frame distance: closed form (lines) and sampled (dots), one panel per kind."""
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(4.2 * len(kinds), 3.3), layout="constrained", squeeze=False
    )
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(alphas)))
    for ax, kind in zip(axes[0], kinds, strict=True):
        for color, alpha in zip(colors, alphas, strict=True):
            closed, empirical = matrices[(kind, float(alpha))]
            d = np.arange(len(closed))
            ax.plot(d, mean_by_distance(closed), color=color, label=f"α={_alpha_label(alpha)}")
            ax.plot(d, mean_by_distance(empirical), "o", color=color, markersize=3)
        ax.set_title(f"{kind}: closed form (lines) vs sampled (dots)", fontsize=9)
        ax.set_xlabel("frame distance |i − j|")
        ax.set_ylabel("correlation")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="upper right")
    return fig


def similarity_by_distance_figure(distances, same_video, fits: Mapping[str, Sequence[float]]):
    """Mean cosine similarity of inverted maps vs frame distance, with the fitted priors' curves."""
    fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
    ax.errorbar(
        distances, same_video["mean"], yerr=same_video["sem"], fmt="o-", capsize=3, label="inverted maps"
    )
    for name, curve in fits.items():
        ax.plot(distances, curve, "--", label=name)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xlabel("frame distance |i − j|")
    ax.set_ylabel("cosine similarity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def metric_vs_alpha_figure(curves: Mapping[str, Mapping[str, Mapping]], *, metric: str, scratch=None):
    """Fig. 7: metric vs alpha (mean ± std over seeds) per prior; alpha = 0 and inf drawn at the ends."""
    keys = sorted({k for c in curves.values() for k in c}, key=float)
    positions = {k: i for i, k in enumerate(keys)}
    fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    for name, curve in curves.items():
        xs = [positions[k] for k in sorted(curve, key=float)]
        points = [curve[k] for k in sorted(curve, key=float)]
        ax.errorbar(
            xs, [p["mean"] for p in points], yerr=[p["std"] for p in points], fmt="o-", capsize=3, label=name
        )
    if scratch is not None:
        ax.axhline(scratch["mean"], color="black", linestyle=":", label="from scratch")
    ax.set_xticks(range(len(keys)), ["∞" if k == "inf" else k for k in keys])
    ax.set_xlabel("α (categorical axis, as in the paper's Fig. 7)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def model_size_figure(
    sizes: Sequence[str], parameters: Sequence[int], results: Mapping[str, Sequence[float]], *, metric: str
):
    """Fig. 8: metric vs number of parameters, one line per training strategy."""
    fig, ax = plt.subplots(figsize=(4.8, 3.5), layout="constrained")
    millions = [p / 1e6 for p in parameters]
    for name, values in results.items():
        ax.plot(millions, values, "o-", label=name)
    for x, label in zip(millions, sizes, strict=True):
        ax.annotate(label, (x, 0), xycoords=("data", "axes fraction"), fontsize=7, ha="center", va="bottom")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def table1_figure(table: Mapping[str, Mapping[str, float]], paper: Mapping[str, tuple[float, float]]):
    """Table 1 as bars: same-video vs different-video cosine similarity, ours next to the paper's."""
    rows = [("same video", "same_video", "same"), ("different video", "different_video", "different")]
    fig, ax = plt.subplots(figsize=(4.4, 3.2), layout="constrained")
    x = np.arange(len(rows))
    ax.bar(
        x - 0.18,
        [paper[p][0] for _, _, p in rows],
        0.36,
        yerr=[paper[p][1] for _, _, p in rows],
        capsize=3,
        label="paper (UCF-101)",
        color="tab:grey",
    )
    ax.bar(
        x + 0.18,
        [table[k]["mean"] for _, k, _ in rows],
        0.36,
        yerr=[table[k]["std"] for _, k, _ in rows],
        capsize=3,
        label="reproduced",
        color="tab:blue",
    )
    ax.set_xticks(x, [name for name, _, _ in rows])
    ax.set_ylabel("cosine similarity of noise maps")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8)
    ax.set_title("Table 1 (mean ± std over pairs)", fontsize=10)
    return fig
