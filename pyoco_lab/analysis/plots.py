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


def similarity_by_distance_figure(
    distances, same_video, fits: Mapping[str, Sequence[float]], *, frame_step: int = 1
):
    """Mean cosine similarity of inverted maps vs frame distance, with the fitted priors' curves.

    ``distances`` count inverted frames; with ``frame_step`` (the stride they were taken at) the axis shows
    the distance in the video's own frames."""
    x = np.asarray(distances) * frame_step
    fig, ax = plt.subplots(figsize=(5.6, 3.8), layout="constrained")
    ax.errorbar(x, same_video["mean"], yerr=same_video["sem"], fmt="o-", capsize=3, label="inverted maps")
    for name, curve in fits.items():
        ax.plot(x, curve, "--", label=name)
    ax.axhline(0, color="grey", linewidth=0.5)
    step = f" (every {frame_step}th frame inverted)" if frame_step > 1 else ""
    ax.set_xlabel(f"distance |i − j| in video frames{step}")
    ax.set_ylabel("cosine similarity of noise maps")
    ax.set_title("same shot: similarity vs frame distance", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def _error(records: Sequence[Mapping]) -> np.ndarray:
    """(2, N) asymmetric error bars of interval records; an unbounded interval draws no bar."""
    lows, highs = [], []
    for r in records:
        low, high, mean = float(r["low"]), float(r["high"]), float(r["mean"])
        bounded = math.isfinite(low) and math.isfinite(high)
        lows.append(mean - low if bounded else 0.0)
        highs.append(high - mean if bounded else 0.0)
    return np.array([lows, highs])


def metric_vs_alpha_figure(
    curves: Mapping[str, Mapping[str, Mapping]],
    *,
    metric: str,
    scratch: Mapping | None = None,
    floor: Mapping | None = None,
    floor_label: str = "real clips (floor)",
):
    """Fig. 7: metric vs alpha per prior with 95% intervals; alpha = 0 and inf drawn at the ends.

    ``curves``: {prior: {alpha key: interval record}}; ``scratch``/``floor`` (held-out real clips): records
    drawn as a line with their interval as a band; ``floor_label`` names the real clips' line (a target, not
    a floor, for motion-ratio). A point on fewer seeds than the most any point holds (a
    run not made: ``reproduce --from-records``) is drawn hollow, and the legend says so.
    """
    keys = sorted({k for c in curves.values() for k in c}, key=float)
    positions = {k: i for i, k in enumerate(keys)}
    most = max((int(p["n"]) for c in curves.values() for p in c.values()), default=0)
    fig, ax = plt.subplots(figsize=(5.2, 3.6), layout="constrained")
    for shift, (name, curve) in zip(np.linspace(-0.08, 0.08, len(curves)), curves.items(), strict=True):
        order = sorted(curve, key=float)
        points = [curve[k] for k in order]
        bars = ax.errorbar(
            [positions[k] + shift for k in order],
            [p["mean"] for p in points],
            yerr=_error(points),
            fmt="o-",
            capsize=3,
            label=name,
        )
        fewer = [i for i, p in enumerate(points) if int(p["n"]) < most]
        if fewer:
            ax.plot(
                [positions[order[i]] + shift for i in fewer],
                [points[i]["mean"] for i in fewer],
                "o",
                markerfacecolor="white",
                markeredgecolor=bars.lines[0].get_color(),
                zorder=3,
            )
    if any(int(p["n"]) < most for c in curves.values() for p in c.values()):
        ax.plot([], [], "o", color="grey", markerfacecolor="white", label=f"hollow: fewer than {most} seeds")
    for record, style, label in ((scratch, ":", "from scratch"), (floor, "--", floor_label)):
        if record is not None:
            ax.axhline(record["mean"], color="black", linestyle=style, label=label)
            if math.isfinite(float(record["low"])) and math.isfinite(float(record["high"])):
                ax.axhspan(float(record["low"]), float(record["high"]), color="black", alpha=0.08)
    ax.set_xticks(range(len(keys)), ["∞" if k == "inf" else k for k in keys])
    ax.set_xlabel("α (categorical axis, as in the paper's Fig. 7)")
    ax.set_ylabel(f"{metric} (95% interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def model_size_figure(
    sizes: Sequence[str], parameters: Sequence[int], results: Mapping[str, Sequence[Mapping]], *, metric: str
):
    """Fig. 8: metric vs number of parameters, one line per training strategy, with 95% intervals."""
    fig, ax = plt.subplots(figsize=(4.8, 3.5), layout="constrained")
    millions = np.array([p / 1e6 for p in parameters])
    spread = 0.01 * (millions.max() - millions.min() or 1.0)
    for shift, (name, records) in zip((-spread, 0.0, spread), results.items(), strict=False):
        ax.errorbar(
            millions + shift,
            [r["mean"] for r in records],
            yerr=_error(records),
            fmt="o-",
            capsize=3,
            label=name,
        )
    for x, label in zip(millions, sizes, strict=True):
        ax.annotate(label, (x, 0), xycoords=("data", "axes fraction"), fontsize=7, ha="center", va="bottom")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel(f"{metric} (95% interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def controls_figure(
    rows: Mapping[str, Mapping[str, Mapping]],
    metrics: Sequence[str],
    notes: Mapping[str, str] | None = None,
):
    """Metric controls: one panel per metric, a bar (95% interval) per control or generated condition.

    ``notes``: {metric: a few words under its title}, e.g. whether it passes its controls.
    """
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.3 * len(metrics), 3.2), layout="constrained", squeeze=False
    )
    names = list(rows)
    for ax, metric in zip(axes[0], metrics, strict=True):
        records = [rows[n][metric] for n in names]
        ax.bar(
            range(len(names)), [r["mean"] for r in records], yerr=_error(records), capsize=3, color="tab:grey"
        )
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        note = (notes or {}).get(metric)
        ax.set_title(metric + (f"\n{note}" if note else ""), fontsize=9)
        if metric == "motion-ratio":
            ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
            ax.set_yscale("symlog", linthresh=0.1)
        ax.grid(alpha=0.3, axis="y")
    return fig


def finetune_curve_figure(curves: Mapping[str, Mapping[str, Mapping[int, Mapping]]], metrics: Sequence[str]):
    """Metrics vs finetune steps, one line per prior, with 95% intervals.

    ``curves``: {metric: {prior: {step: interval record}}}.
    """
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 3.4), layout="constrained", squeeze=False
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        for name, points in curves[metric].items():
            steps = sorted(points, key=int)
            records = [points[k] for k in steps]
            ax.errorbar(
                [int(k) for k in steps],
                [r["mean"] for r in records],
                yerr=_error(records),
                fmt="o-",
                capsize=3,
                label=name,
            )
        if metric == "motion-ratio":
            ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8, label="real motion")
            ax.axhline(2.0, color="black", linestyle=":", linewidth=0.8, label="2× real")
            ax.set_yscale("symlog", linthresh=0.01)
        ax.set_xlabel("finetune steps")
        ax.set_ylabel(f"{metric} (95% interval)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
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


def cosine_matrix_figure(
    matrix,
    boundaries: Sequence[int] = (),
    *,
    title: str = "cosine similarity of noise maps",
    frames: Sequence[int] | None = None,
    cuts: Sequence[int] = (),
):
    """A frames x frames similarity heatmap; ``boundaries``: positions where a new video starts (black
    lines); ``cuts``: positions where a new shot starts (dashed); ``frames``: each position's frame number
    in its video, shown on the axes instead of the position."""
    size = len(matrix)
    side = min(9.0, max(4.6, 0.28 * size + 2.0))
    fig, ax = plt.subplots(figsize=(side + 0.8, side), layout="constrained")
    image = ax.imshow(np.asarray(matrix), cmap=CMAP, vmin=-1, vmax=1, interpolation="nearest")
    for b in boundaries:
        ax.axhline(b - 0.5, color="black", linewidth=1.5)
        ax.axvline(b - 0.5, color="black", linewidth=1.5)
    for c in cuts:
        ax.axhline(c - 0.5, color="black", linewidth=1.2, linestyle="--")
        ax.axvline(c - 0.5, color="black", linewidth=1.2, linestyle="--")
    if cuts:
        ax.plot([], [], color="black", linestyle="--", label="shot cut")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    if frames is not None:
        every = max(1, math.ceil(size / 24))  # at most ~24 labels a side stay legible
        ticks = list(range(0, size, every))
        for axis in (ax.set_xticks, ax.set_yticks):
            axis(ticks, [str(frames[t]) for t in ticks], fontsize=7)
        ax.tick_params(axis="x", labelrotation=90)
        ax.set_xlabel("video frame")
        ax.set_ylabel("video frame")
    else:
        ax.set_xlabel("frame")
        ax.set_ylabel("frame")
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("cosine similarity", fontsize=8)
    return fig


def sampling_sweep_figure(rows: Sequence[Mapping], controls: Mapping[str, Mapping], *, real_row: str):
    """Scene consistency against motion for each (model, sampled prior) of a sampling sweep
    (``sampling_priors.summary_rows``), with their intervals, and the real clips and controls as points:
    the target is the real clips' corner (scene-held ≈ 1 at motion-ratio 1); a still clip holds its scene
    at motion 0, a cutting one moves a lot and holds little."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 4.2), layout="constrained")
    models = sorted({row["model"] for row in rows})
    markers = dict(zip(models, "osD^v<>", strict=False))
    for i, row in enumerate(rows):
        held, motion, kid = row["scene-held"], row["motion-ratio"], row["KID-app"]
        label = f"{row['model'].removeprefix('pretrained:')} sampled {row['sampled_prior']}"
        style = dict(marker=markers[row["model"]], color=f"C{i % 10}", capsize=2, label=label, ls="none")
        ax.errorbar(
            motion["mean"],
            held["mean"],
            xerr=[[motion["mean"] - motion["low"]], [motion["high"] - motion["mean"]]],
            yerr=[[held["mean"] - held["low"]], [held["high"] - held["mean"]]],
            **style,
        )
        bx.errorbar(
            motion["mean"],
            kid["mean"],
            xerr=[[motion["mean"] - motion["low"]], [motion["high"] - motion["mean"]]],
            yerr=[[kid["mean"] - kid["low"]], [kid["high"] - kid["mean"]]],
            **style,
        )
    shown = [(n, v) for n, v in controls.items() if n == real_row or v["motion-ratio"] <= 12]  # flicker: ~30x
    for k, (name, values) in enumerate(sorted(shown, key=lambda item: item[1]["motion-ratio"])):
        colour = "black" if name == real_row else "grey"
        point = (values["motion-ratio"], values["scene-held"])
        ax.scatter(*point, marker="*", s=90, color=colour, zorder=3)
        # neighbours along x alternate above and below their star, so labels of close points do not overlap
        offset = (4, 6) if k % 2 == 0 else (4, -12)
        ax.annotate(name, point, xytext=offset, textcoords="offset points", fontsize=7, color=colour)
    ax.axvspan(0.5, 2.0, color="green", alpha=0.06, label="motion within [0.5, 2]× real")
    ax.axhline(0.9, color="green", lw=0.8, ls=":", label="90% of clips hold one scene")
    ax.set_xlabel("motion-ratio (1 = real motion)")
    ax.set_ylabel("scene-held (share of clips with no cut)")
    ax.set_ylim(-0.05, 1.1)
    ax.set_title("does a clip keep one scene, and does it move?", fontsize=9)
    bx.axvline(1.0, color="black", lw=0.8, ls=":")
    bx.set_xlabel("motion-ratio (1 = real motion)")
    bx.set_ylabel("KID-app vs training clips (lower is better)")
    bx.set_title(f"content (real clips: {controls[real_row]['KID-app']:.2f})", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    # beside the panels, not over them: a sweep of many models and priors has more rows than a panel has room
    fig.legend(handles, labels, fontsize=6, loc="outside right center")
    return fig
