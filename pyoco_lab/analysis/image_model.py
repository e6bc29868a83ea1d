"""How good is the image model every finetune starts from? Samples beside training frames, measured
with the frame yardsticks next to their controls.

PYoCo's evidence stands on the image model (Section 5; Table 5's "Image Diffusion" row): Table 1
inverts real frames with it, and every Fig. 7 / Table 5 / Fig. 8 finetune starts from it. Its samples are
compared with the training distribution, as FID compares a generator with its training set, by the
yardsticks of ``pyoco_lab.metrics.yardsticks`` (KID-app, the two-sample test, precision / recall, density /
coverage, memorisation), and every measure is shown beside the controls that prove it can tell real frames
from noise, shuffled pixels, flat colour and blur (issue #22).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from einops import rearrange
from matplotlib.ticker import FuncFormatter, NullFormatter

from pyoco_lab import devices, edm
from pyoco_lab.analysis.inversion import (
    cached_frame_inversion,
    gaussianity,
    model_identity,
    table1_rows,
)
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json
from pyoco_lab.metrics import appearance, yardsticks
from pyoco_lab.progress import tqdm
from pyoco_lab.training import load_config, load_denoiser, resolve_checkpoint
from pyoco_lab.training.checkpoints import checkpoint_folders, checkpoint_step
from pyoco_lab.training.config import config_to_dict


@torch.no_grad()
def sample_images(
    denoiser,
    count: int,
    resolution: int,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    sampler_options: dict | None = None,
    seed: int = 0,
    batch_size: int = 128,
) -> torch.Tensor:
    """``count`` images (N, 3, H, W) in [-1, 1] on the CPU from an image denoiser, i.i.d. noise, seeded.

    Sampled on the denoiser's device; the noise comes from a CPU generator (the same images on any device).
    """
    generator = torch.Generator().manual_seed(seed)
    device = devices.device_of(denoiser)
    size = resolution
    out = []
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        x_t = torch.randn((n, 1, 3, size, size), generator=generator).to(device)

        def denoise(x, sigma):
            return denoiser(x[:, 0], sigma)[:, None]

        with devices.sampling_mode(device):
            x0 = edm.sample(denoise, x_t, sampler=sampler, num_steps=num_steps, **(sampler_options or {}))
        out.append(x0[:, 0].float().clamp(-1, 1).cpu())
    return torch.cat(out)


def image_model_quality(
    image_model: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    num_samples: int = 512,
    sampler: str = "heun",
    num_steps: int = 18,
    sampler_options: dict | None = None,
    seed: int = 0,
    ema: bool = True,
    controls: bool = True,
    progress: bool = True,
) -> dict:
    """The image model's samples measured with the frame yardsticks, beside the controls. Cached.

    ``image_model``: ``pretrained:NAME``, a run folder (its newest checkpoint) or one checkpoint folder;
    ``ema=False`` measures a checkpoint's raw (not averaged) weights. ``controls=False`` keeps only the
    samples and the real floor: the controls do not depend on the model, so a training curve measures
    them once (:func:`images_seen_curve`), not at every checkpoint.

    ``rows``: {row name: frame scores} for the samples and for every control of
    ``metrics.yardsticks.frame_controls`` (real frames of other train clips — the floor —, held-out scenes,
    noise, shuffled pixels, flat colour, 4×4 blur, copies of training frames), all against the same
    training-distribution reference at the same N; ``controls_pass``: which measures rank every corruption
    below real (:func:`yardsticks.control_verdicts`); 16 samples and 16 training frames for a picture.
    """
    digest = json_digest(
        [
            model_identity(image_model) + ("" if ema else " raw weights"),
            num_samples,
            sampler,
            num_steps,
            seed,
            appearance.APPEARANCE_VERSION,
            yardsticks.YARDSTICKS_VERSION,
            controls,
        ],
        12,
    )
    path = Path(cache_dir) / "image_quality" / f"yardsticks-{digest}.json"
    if path.is_file():
        stored = read_json(path, "image-model quality cache")
        return {**stored, "samples": torch.tensor(stored["samples"]), "real": torch.tensor(stored["real"])}
    denoiser, config = load_denoiser(image_model, ema=ema)
    samples = sample_images(
        denoiser,
        num_samples,
        config.resolution,
        sampler=sampler,
        num_steps=num_steps,
        sampler_options=sampler_options,
        seed=seed,
    )
    net = appearance.appearance_net(config.resolution, root=config.data_root, progress=progress)
    sets = yardsticks.real_sets(net, config.resolution, num_samples, root=config.data_root, seed=seed)
    rows = {SAMPLES_ROW: yardsticks.frame_scores(sets, net, samples, seed=seed)}
    if controls:
        rows.update(yardsticks.frame_controls(sets, net, seed=seed))
    else:
        rows[yardsticks.REAL_ROW] = yardsticks.frame_scores(sets, net, sets.real, seed=seed)
    real = sets.real[
        _spread(len(sets.real), 16)
    ]  # training frames across the split, as the samples should be
    result = {
        "image_model": model_identity(image_model),
        "resolution": config.resolution,
        "sampler": sampler,
        "num_steps": num_steps,
        "sampler_options": dict(sampler_options or {}),
        "num_samples": num_samples,
        "num_reference": len(sets.reference),
        "rows": rows,
        "ema": ema,
        "controls_pass": yardsticks.control_verdicts(rows) if controls else {},
        "samples": samples[:16].tolist(),
        "real": real.tolist(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result))
    return {**result, "samples": samples[:16], "real": real}


def registry_quality(quality: dict, measured_by: str) -> dict[str, str]:
    """The registry's record of :func:`image_model_quality`: the samples' yardsticks beside the real floor,
    each with its interval, and whether every measure passed its controls (``pretrained list`` shows it)."""
    samples, real = quality["rows"][SAMPLES_ROW], quality["rows"][yardsticks.REAL_ROW]
    n = f"(N {quality['num_samples']} vs {quality['num_reference']} training frames)"

    def with_ci(row: dict, name: str) -> str:
        low, high = row[f"{name}-ci"]
        return f"{row[name]:.3f} [{low:.3f}, {high:.3f}]"

    failed = [m for m, v in quality["controls_pass"].items() if not v["passes"]]
    return {
        "yardsticks KID-app, samples vs training frames": f"{with_ci(samples, 'KID-app')} {n}",
        "yardsticks KID-app floor, real vs training frames": with_ci(real, "KID-app"),
        "yardsticks C2ST-frame, samples vs training frames (0.5 = indistinguishable)": with_ci(
            samples, "C2ST-frame"
        ),
        "yardsticks precision / recall (real floor)": f"{samples['precision-app']:.2f} / "
        f"{samples['recall-app']:.2f} ({real['precision-app']:.2f} / {real['recall-app']:.2f})",
        "yardsticks density / coverage (real floor)": f"{samples['density-app']:.2f} / "
        f"{samples['coverage-app']:.2f} ({real['density-app']:.2f} / {real['coverage-app']:.2f})",
        "yardsticks memorisation NN-ratio / copy-fraction": f"{samples['NN-ratio']:.2f} / "
        f"{samples['copy-fraction']:.2f}",
        "yardsticks controls": "every measure passed" if not failed else f"failed: {', '.join(failed)}",
        "yardsticks measured_by": measured_by,
    }


def inversion_quality(
    image_model: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    per_source: int = 16,
    num_steps: int = 24,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Notebook 02's Gaussianity of the inverted maps of held-out frames (Table 1's premise), with the
    different-video spread as a multiple of the i.i.d. floor: :func:`inversion.gaussianity`'s record."""
    sampled = cached_frame_inversion(
        image_model, cache_dir, per_source=per_source, num_steps=num_steps, seed=seed, progress=progress
    )
    table = table1_rows(sampled, seed=seed)["noise maps (inverted)"]
    return gaussianity(sampled["maps"], different_video_std=table["different_video"]["std"])


def registry_inversion(gauss: dict) -> dict:
    """The registry's record of :func:`inversion_quality` (the keys ``pretrained list`` has always shown)."""
    return {
        "inverted maps per-map variance": round(gauss["variance"], 3),
        "inverted maps per-map mean": round(gauss["mean"], 3),
        "inverted maps lag-1 autocorrelation": round(gauss["autocorrelation"], 3),
        "different-video cosine std / i.i.d. floor": round(gauss["floor_ratio"], 2),
        "gaussianity targets met": bool(gauss["looks_gaussian"]),
    }


def _spread(length: int, count: int) -> torch.Tensor:
    return torch.linspace(0, length - 1, min(count, length)).round().long()


SAMPLES_ROW = "image model samples"


def samples_beside_real_figure(samples: torch.Tensor, real: torch.Tensor, *, title: str = ""):
    """Two rows of images: the image model's samples above, real training frames below."""
    count = min(len(samples), len(real), 16)
    fig, axes = plt.subplots(2, count, figsize=(count * 0.9, 2.2), layout="constrained")
    for row, (images, name) in enumerate(((samples, "samples"), (real, "training frames"))):
        for i in range(count):
            ax = axes[row, i]
            ax.imshow(rearrange((images[i].clamp(-1, 1) + 1) / 2, "c h w -> h w c").numpy())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


# ----------------------------------------------------------------------------------------------------
# The images-seen curve (issue #23): how the quality of an image run grows with the images it has seen.
#
# A recipe is chosen on this curve, not guessed: every kept checkpoint of every candidate run is measured
# with the same frame yardsticks (samples against training frames) and with the Gaussianity of its inversion
# of held-out frames (Table 1's premise), so a candidate that fits the training scenes better but inverts
# unseen footage less like noise shows it as two curves pulling apart.

CURVE_KIND = "pyoco-lab images-seen curve"
PLAIN_NUMBERS = FuncFormatter(lambda value, _: f"{value:g}")
# What each panel shows and the issue-#23 target drawn on it (None: no target, lower is better).
CURVE_PANELS = (
    ("KID-app", "KID-app (0 = real)", None),
    ("C2ST-frame", "two-sample test accuracy (0.5 = real)", 0.75),
    ("precision-app", "precision (appearance space)", 0.6),
    ("recall-app", "recall (appearance space)", 0.3),
    ("variance", "inverted held-out maps: variance", (0.9, 1.1)),
    ("autocorrelation", "inverted maps: lag-1 autocorrelation", (-0.1, 0.1)),
)


def checkpoint_point(
    checkpoint: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    ema: bool = True,
    num_samples: int = 512,
    sampler: str = "deis",
    num_steps: int = 6,
    sampler_options: dict | None = None,
    inversion_per_source: int = 16,
    inversion_steps: int = 24,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """One point of the curve: a checkpoint's samples scored with the frame yardsticks (no controls) and,
    for its EMA weights, the Gaussianity of its inversion of held-out frames (notebook 02's targets)."""
    folder, run_dir = resolve_checkpoint(checkpoint)
    config = load_config(run_dir)
    step = checkpoint_step(folder)
    quality = image_model_quality(
        folder,
        cache_dir,
        num_samples=num_samples,
        sampler=sampler,
        num_steps=num_steps,
        sampler_options=sampler_options,
        seed=seed,
        ema=ema,
        controls=False,
        progress=progress,
    )
    samples, real = quality["rows"][SAMPLES_ROW], quality["rows"][yardsticks.REAL_ROW]
    point = {
        "pictures": quality["samples"],  # 16 samples (same seed at every checkpoint); not written to JSON
        "checkpoint": str(folder),
        "step": step,
        "images_seen": step * config.batch_size,
        "weights": "ema" if ema else "raw",
        **{k: samples[k] for k in CURVE_MEASURES if k in samples},
        "real floor": {k: real[k] for k in CURVE_MEASURES if k in real},
    }
    if ema:  # the inversion is what ships (EMA weights); raw weights are only a sample-side comparison
        gauss = inversion_quality(
            folder,
            cache_dir,
            per_source=inversion_per_source,
            num_steps=inversion_steps,
            seed=seed,
            progress=progress,
        )
        point.update(
            {
                "variance": gauss["variance"],
                "autocorrelation": gauss["autocorrelation"],
                "floor_ratio": gauss["floor_ratio"],
                "looks_gaussian": gauss["looks_gaussian"],
            }
        )
    return point


CURVE_MEASURES = (
    "KID-app",
    "KID-app-ci",
    "C2ST-frame",
    "C2ST-frame-ci",
    "precision-app",
    "recall-app",
    "density-app",
    "coverage-app",
    "NN-ratio",
    "copy-fraction",
)


def run_label(run_dir: str | os.PathLike) -> str:
    """A candidate's name on the curve: its architecture and the recipe fields that differ between runs."""
    config = load_config(run_dir)
    return (
        f"{config.model}, lr {config.lr:g}, batch {config.batch_size}, EMA {config.ema_decay:g}, "
        f"{config.precision}"
    )


def images_seen_curve(
    runs: list[str | os.PathLike],
    cache_dir: str | os.PathLike,
    *,
    raw_weights: bool = False,
    previous: dict | None = None,
    progress: bool = True,
    **point_options,
) -> dict:
    """Every kept checkpoint of every run in ``runs``, measured (:func:`checkpoint_point`), oldest first.

    ``raw_weights`` adds each checkpoint's raw weights beside its EMA (what the EMA length buys).
    ``previous``: a curve this function returned before; its points are kept for checkpoints that no longer
    exist (pruned, or a run folder lost with its machine), so a curve grows across the parts of a run.
    Every point is cached under ``cache_dir``, so measuring a grown run measures only its new checkpoints.
    Returns (curve, pictures): the JSON-ready curve, and {run: {step: 16 EMA samples}} for
    :func:`samples_by_checkpoint_figure` (the same noise at every checkpoint).
    """
    pictures: dict[str, dict[int, torch.Tensor]] = {}
    curve = {"kind": CURVE_KIND, "settings": dict(point_options), "runs": {}}
    for name, entry in (previous or {}).get("runs", {}).items():
        curve["runs"][name] = {**entry, "points": list(entry["points"])}
    weights = (True, False) if raw_weights else (True,)
    folders = [(Path(run), folder) for run in runs for folder in reversed(checkpoint_folders(run))]
    for run, folder in tqdm(folders, desc="images-seen curve", unit="checkpoint", disable=not progress):
        name = str(run.resolve().name)
        entry = curve["runs"].setdefault(name, {"label": run_label(run), "config": {}, "points": []})
        entry["label"] = run_label(run)
        entry["config"] = config_to_dict(load_config(run))
        for ema in weights:
            point = checkpoint_point(folder, cache_dir, ema=ema, **point_options)
            if ema:
                pictures.setdefault(name, {})[point["step"]] = point["pictures"]
            del point["pictures"]
            entry["points"] = [
                p for p in entry["points"] if (p["step"], p["weights"]) != (point["step"], point["weights"])
            ]
            entry["points"].append(point)
        entry["points"].sort(key=lambda p: (p["weights"], p["step"]))
    return curve, pictures


def samples_by_checkpoint_figure(pictures: dict[int, torch.Tensor], *, columns: int = 12, title: str = ""):
    """One row per checkpoint (images seen growing downwards), the same noise in every column: how the
    samples of one run change with training, for a person to judge before any number."""
    steps = sorted(pictures)
    columns = min(columns, min(len(p) for p in pictures.values()))
    fig, axes = plt.subplots(
        len(steps),
        columns,
        figsize=(columns * 0.8, len(steps) * 0.85 + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for row, step in enumerate(steps):
        for col in range(columns):
            ax = axes[row, col]
            ax.imshow(
                rearrange((pictures[step][col].clamp(-1, 1) + 1) / 2, "c h w -> h w c").numpy(),
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(f"step {step:,}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def images_seen_figure(curve: dict, *, title: str = ""):
    """The measures of :data:`CURVE_PANELS` against images seen, one line per run (raw weights dashed),
    95% intervals as error bars, the issue-#23 targets shaded or drawn, the real floor dotted."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (measure, label, target) in zip(axes.flat, CURVE_PANELS, strict=True):
        for index, entry in enumerate(curve["runs"].values()):
            for weights, style in (("ema", "-o"), ("raw", "--x")):
                points = [p for p in entry["points"] if p["weights"] == weights and measure in p]
                if not points:
                    continue
                x = [p["images_seen"] / 1000 for p in points]
                y = [p[measure] for p in points]
                colour = colours[index % len(colours)]
                tag = entry["label"] + ("" if weights == "ema" else " (raw weights)")
                ax.plot(x, y, style, color=colour, label=tag, markersize=4)
                if f"{measure}-ci" in points[0]:
                    low = [y_ - p[f"{measure}-ci"][0] for y_, p in zip(y, points, strict=True)]
                    high = [p[f"{measure}-ci"][1] - y_ for y_, p in zip(y, points, strict=True)]
                    ax.errorbar(x, y, yerr=[low, high], fmt="none", ecolor=colour, alpha=0.5)
        floors = [
            p["real floor"][measure]
            for e in curve["runs"].values()
            for p in e["points"]
            if measure in p.get("real floor", {})
        ]
        if floors:
            ax.axhline(sum(floors) / len(floors), color="grey", linestyle=":", label="real frames (floor)")
        if isinstance(target, tuple):
            ax.axhspan(*target, color="green", alpha=0.12, label="target")
        elif target is not None:
            ax.axhline(target, color="green", linestyle="--", alpha=0.7, label="target")
        ax.set_title(label, fontsize=9)
        ax.set_xscale("log", base=2)  # ticks at 16, 32, 64, 128, 256 thousand images
        ax.xaxis.set_major_formatter(PLAIN_NUMBERS)  # 16, 32, 64 rather than 2^4
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels crowd one another on a log axis
        ax.set_xlabel("images seen (thousands, log scale)", fontsize=8)
        ax.tick_params(labelsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
