"""The single source of the figure notebooks 01-07: ``python notebooks/_build.py`` rewrites them.

Edit the cells here, run this script, commit both. ``--check`` exits 1 if a committed notebook
differs from what this file would write (the notebook test runs it). Notebooks are written
without outputs and with fixed cell ids, so ``nbstripout --verify`` passes and diffs stay small.
Each notebook: a markdown header, one cell tagged ``parameters`` (literals only, for papermill),
then calls into ``pyoco_lab`` and plots, ending with ``results.save_results``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

COMMON_PARAMETERS = """preset = "quick"  # smoke | quick | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/{stem}"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks"""

SETUP = """from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import HTML, Image, Markdown, display

from pyoco_lab import noise, viz
from pyoco_lab.analysis import experiments, plots, results

torch.set_num_threads(max(1, torch.get_num_threads()))
out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
s = experiments.settings(
    preset,{overrides})
print(f"preset {{s.name}}: {{s.description}} (budget: {{s.budget}})")"""


def md(text: str) -> tuple[str, str]:
    return ("markdown", text.strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", text.strip("\n"))


def parameters(stem: str, knobs: str) -> tuple[str, str]:
    return ("parameters", COMMON_PARAMETERS.format(stem=stem) + "\n" + knobs.strip("\n"))


def setup(**overrides: str) -> tuple[str, str]:
    # one knob per line, the way `ruff format` lays out a call that does not fit on one line
    text = "".join(f"\n    {k}={v}," for k, v in overrides.items())
    return code(SETUP.format(overrides=text + "\n" if text else ""))


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["01_noise_priors"] = [
    md("""
# 01 · Noise priors (Section 4, eqs. 3–4)

PYoCo replaces the i.i.d. noise of video diffusion with noise that is **correlated across frames**:

* **mixed** (eq. 3): every frame = a shared noise map + its own: corr(εⁱ, εʲ) = α²/(1+α²) for i ≠ j;
* **progressive** (eq. 4): each frame = a scaled copy of the previous one + new noise, an AR(1) process:
  corr(εⁱ, εʲ) = (α/√(1+α²))^|i−j|.

Each frame stays exactly N(0, I). This notebook compares the closed-form correlation matrices with the ones
measured on sampled noise over a range of α, and shows the noise "videos". Run it with
`pyoco-lab reproduce --only 01` or directly in Jupyter.
"""),
    parameters(
        "01_noise_priors",
        """alphas = None  # list of alphas to compare; None: the preset's
num_frames = None  # frames per noise video; None: the preset's
num_samples = None  # noise videos drawn per prior; None: the preset's
seed = 0  # random seed""",
    ),
    setup(noise_alphas="alphas", noise_frames="num_frames", noise_samples="num_samples"),
    md("## Closed form vs sampled correlation"),
    code("""
from pyoco_lab.analysis import priors

kinds = ("mixed", "progressive")
study = priors.prior_study(
    s.noise_alphas,
    kinds=kinds,
    num_frames=s.noise_frames,
    num_samples=s.noise_samples,
    resolution=s.noise_resolution,
    seed=seed,
)
print(
    f"max |empirical - closed form| = {study['max_abs_error']:.4f} "
    f"= {study['worst_error_in_standard_errors']:.1f} standard errors (se = {study['standard_error']:.4f})"
)
print(f"per-frame variance in {study['variance_range']} (closed form: 1)")
fig = plots.prior_matrix_grid(study["matrices"], kinds, s.noise_alphas)
viz.save_figure(fig, out / "correlation_matrices.png")
fig = plots.prior_distance_figure(study["matrices"], kinds, s.noise_alphas)
viz.save_figure(fig, out / "correlation_vs_distance.png")
plt.show()
"""),
    md(
        "Interactive version (hover for values) of the paper's recommended settings, "
        "mixed α = 1 and progressive α = 2:"
    ),
    code("""
matrices = {
    "i.i.d.": noise.frame_correlation("iid", s.noise_frames),
    "mixed α=1": noise.frame_correlation("mixed", s.noise_frames, 1.0),
    "progressive α=2": noise.frame_correlation("progressive", s.noise_frames, 2.0),
}
figure = viz.correlation_figure_plotly(matrices, title="closed-form frame correlation")
results.save_plotly_html(figure, out / "correlation_recommended.html")
figure
"""),
    md("""
## Noise "videos"

Each tile is one noise video, frames played in a loop (values −3…3 mapped to 0…255). i.i.d. noise flickers;
mixed noise shares a fixed pattern in every frame; progressive noise drifts slowly.
"""),
    code("""
generator = torch.Generator().manual_seed(seed)
shape = (1, s.noise_frames, 3, 32, 32)
priors_shown = {"i.i.d.": ("iid", 0.0), "mixed α=1": ("mixed", 1.0), "progressive α=2": ("progressive", 2.0)}
priors_shown["progressive α=10"] = ("progressive", 10.0)
videos = {}
for label, (kind, alpha) in priors_shown.items():
    videos[label] = noise.sample_noise(kind, shape, alpha, generator=generator)[0]
    viz.save_video(videos[label], out / f"noise_{kind}_{results.alpha_key(alpha)}.gif", value_range=(-3, 3))
display(HTML(viz.video_grid(list(videos.values()), list(videos), value_range=(-3, 3), fps=4)))
"""),
    md("""
## The two limits of α

* **α → 0**: the shared part vanishes; both priors become i.i.d. noise — the naive extension of the image
  prior (finetuning with it is the paper's "Finetuning from ID" baseline).
* **α → ∞**: the individual part vanishes; every frame gets the *same* noise map, so a model trained with it
  turns the video into a frozen image ("produces frozen videos during the inference time", Section 5).

Correlation at frame distance 1 and at the last frame in the two limits:
"""),
    code("""
limits = priors.limit_table(s.noise_frames)
for name, (d1, dlast) in limits.items():
    print(f"{name:24s} distance 1: {d1:.3f}   distance {s.noise_frames - 1}: {dlast:.3f}")
"""),
    code("""
curves = {
    f"{kind} {results.alpha_key(alpha)}": {
        "closed": viz.mean_by_distance(closed).tolist(),
        "empirical": viz.mean_by_distance(empirical).tolist(),
    }
    for (kind, alpha), (closed, empirical) in study["matrices"].items()
}
results.save_results(
    out,
    "01_noise_priors",
    s.name,
    {
        "alphas": [results.alpha_key(a) for a in s.noise_alphas],
        "num_frames": s.noise_frames,
        "samples_per_pair": study["samples_per_pair"],
        "max_abs_error": study["max_abs_error"],
        "standard_error": study["standard_error"],
        "worst_error_in_standard_errors": study["worst_error_in_standard_errors"],
        "variance_range": study["variance_range"],
        "limits": limits,
        "curves": curves,
    },
)
"""),
]


# ------------------------------------------------------------------------------------------------
NOTEBOOKS["02_inversion"] = [
    md("""
# 02 · Inversion and the cosine-similarity table (Table 1)

Section 4's evidence for correlated noise: pre-train an **image** diffusion model, run its probability-flow
ODE (eq. 2) *backwards* (σ from ~0 up to σ_max) on every frame of held-out real clips, and compare the noise
maps it lands on. The paper finds frames of the same video map to correlated noise (0.206 ± 0.156 average
pairwise cosine similarity) while frames of different videos do not (0.001 ± 0.009).

Here we also measure how the similarity decays with frame distance, fit the α of the mixed and the
progressive prior to that decay (a data-driven α the paper does not give), and check that the inverted maps
look like unit Gaussian noise — if they do not, the image model is undertrained and the table says little.
"""),
    parameters(
        "02_inversion",
        """inversion_videos = None  # held-out clips to invert; None: the preset's
inversion_frames = None  # frames per clip; None: the preset's
inversion_steps = None  # ODE steps from sigma_min to sigma_max; None: the preset's
image_steps = None  # image pre-training steps; None: the preset's
seed = 0  # which held-out clips""",
    ),
    setup(
        inversion_videos="inversion_videos",
        inversion_frames="inversion_frames",
        inversion_steps="inversion_steps",
        image_steps="image_steps",
    ),
    md("## The image model (trained once, shared through the cache)"),
    code("""
from pyoco_lab.analysis import inversion
from pyoco_lab.analysis.summary import PAPER, render_section

image_dir = experiments.ensure_run(experiments.image_run(s), cache_dir)
print("image model:", image_dir)
"""),
    md("## Invert held-out clips frame by frame"),
    code("""
inv = inversion.cached_inversion(
    image_dir,
    cache_dir,
    count=s.inversion_videos,
    num_frames=s.inversion_frames,
    num_steps=s.inversion_steps,
    seed=seed,
)
maps, ids = inv["maps"], inv["ids"]
print(f"{maps.shape[0]} clips x {maps.shape[1]} frames from {len(set(ids.tolist()))} source videos")
fig = viz.noise_frames_figure(inv["videos"][0], title="a held-out clip", value_range=(-1, 1))
viz.save_figure(fig, out / "clip.png")
fig = viz.noise_frames_figure(maps[0], title="its inverted noise maps")
viz.save_figure(fig, out / "inverted_maps.png")
plt.show()
"""),
    md("## Table 1: cosine similarity of the inverted noise"),
    code("""
table = inversion.cosine_similarity_table(maps, ids)
print(f"for independent unit noise of this size the similarity is 0 ± {table['iid_floor_std']:.3f}")
if "same_source" in table:
    shared = table["same_source"]
    print(f"other clips of the same source (in neither row): {shared['mean']:.3f} ± {shared['std']:.3f}")
fig = plots.table1_figure(table, PAPER["table1"])
viz.save_figure(fig, out / "table1.png")
plt.show()
"""),
    md("""
## Similarity vs frame distance, and the α that fits it

Mixed noise predicts a constant α²/(1+α²) at every distance; progressive noise predicts (α/√(1+α²))^d.
"""),
    code("""
by_distance = inversion.similarity_by_distance(maps)
fitted = inversion.fit_prior_alphas(by_distance)
curves = {
    f"{kind} fit α={alpha:.2f}": viz.mean_by_distance(noise.frame_correlation(kind, maps.shape[1], alpha))
    for kind, alpha in fitted.items()
}
fig = plots.similarity_by_distance_figure(by_distance["distance"], by_distance, curves)
viz.save_figure(fig, out / "similarity_vs_distance.png")
plt.show()
print({kind: round(alpha, 3) for kind, alpha in fitted.items()}, "(paper's FVD-best: mixed 1, progressive 2)")
"""),
    md("## Do the inverted maps look like unit Gaussian noise?"),
    code("""
gauss = inversion.gaussianity(maps)
print(
    f"mean {gauss['mean']:.3f}, variance {gauss['variance']:.3f}, "
    f"lag-1 spatial autocorrelation {gauss['autocorrelation']:.3f}"
)
display(Markdown(("✅ " if gauss["looks_gaussian"] else "⚠️ ") + gauss["message"]))
"""),
    md("## Next to the paper (as in figures/SUMMARY.md)"),
    code("""
payload = {
    "image_run": str(image_dir),
    "num_clips": int(maps.shape[0]),
    "num_frames": int(maps.shape[1]),
    "num_sources": len(set(ids.tolist())),
    "inversion_steps": s.inversion_steps,
    **table,
    "by_distance": by_distance,
    "fitted_alpha": fitted,
    "gaussianity": gauss,
}
results.save_results(out, "02_inversion", s.name, payload)
display(Markdown(render_section("02_inversion", payload)))
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["03_tsne"] = [
    md("""
# 03 · t-SNE of noise maps (Fig. 2)

(a) Noise maps obtained by inverting frames of several real videos with the image model (notebook 02's
cached inversion), among i.i.d. reference noise: frames of one video cluster. (b) Samples of i.i.d. noise
and of the progressive prior: the prior reproduces that clustering, i.i.d. noise does not.
Interactive versions (hover: video and frame) are written as HTML next to the PNGs.
"""),
    parameters(
        "03_tsne",
        """tsne_videos = None  # videos shown; None: the preset's
tsne_frames = None  # frames per video; None: the preset's
tsne_perplexity = None  # t-SNE perplexity; None: the preset's
kind = "progressive"  # prior of panel (b)
alpha = 2.0  # its alpha (the paper's choice for progressive noise)
seed = 0  # t-SNE and reference-noise seed""",
    ),
    setup(tsne_videos="tsne_videos", tsne_frames="tsne_frames", tsne_perplexity="tsne_perplexity"),
    md("## (a) Inverted noise maps of real videos"),
    code("""
from pyoco_lab.analysis import inversion, tsne
from pyoco_lab.analysis.summary import render_section

image_dir = experiments.ensure_run(experiments.image_run(s), cache_dir)
inv = inversion.cached_inversion(
    image_dir, cache_dir, count=s.inversion_videos, num_frames=s.inversion_frames, num_steps=s.inversion_steps
)
frames = min(s.tsne_frames, inv["maps"].shape[1])
maps = inv["maps"][: s.tsne_videos, :frames]
points, video, frame = tsne.inverted_with_reference(maps, seed=seed)
embedding = tsne.embed(points, perplexity=s.tsne_perplexity, seed=seed)
nn_same, chance = tsne.neighbour_same_video(embedding, video)
print(f"nearest t-SNE neighbour from the same video: {nn_same:.0%} of frames (chance {chance:.0%})")
fig = tsne.scatter_figure(embedding, video, title="(a) inverted noise maps + i.i.d. noise")
viz.save_figure(fig, out / "tsne_inverted.png")
labels = ["i.i.d. noise" if v < 0 else f"video {v}" for v in video]
figure = tsne.scatter_plotly(embedding, labels, video, frame, title="(a) inverted noise maps")
results.save_plotly_html(figure, out / "tsne_inverted.html")
plt.show()
"""),
    md("## (b) i.i.d. noise vs the progressive prior"),
    code("""
points_b, prior_b, video_b, frame_b = tsne.prior_samples(
    kind, alpha, num_videos=s.tsne_videos, num_frames=frames, shape=tuple(maps.shape[2:]), seed=seed
)
embedding_b = tsne.embed(points_b, perplexity=s.tsne_perplexity, seed=seed)
spread = tsne.within_video_spread(embedding_b, prior_b, video_b)
title = f"(b) i.i.d. (grey) vs {kind} α={alpha:g}"
ratio = spread[1] / spread[0]
print(f"within-video spread: {kind} / i.i.d. = {ratio:.2f} (< 1: the prior's frames cluster)")
display_video = np.where(prior_b == 1, video_b, -1)
fig = tsne.scatter_figure(embedding_b, display_video, title=title, reference_label="i.i.d. samples")
viz.save_figure(fig, out / "tsne_priors.png")
labels_b = [
    f"i.i.d. video {v}" if p == 0 else f"{kind} video {v}" for p, v in zip(prior_b, video_b, strict=True)
]
title = f"(b) i.i.d. vs {kind} α={alpha:g}"
figure = tsne.scatter_plotly(embedding_b, labels_b, video_b, frame_b, title=title)
results.save_plotly_html(figure, out / "tsne_priors.html")
plt.show()
"""),
    code("""
payload = {
    "num_videos": int(maps.shape[0]),
    "num_frames": int(frames),
    "perplexity": s.tsne_perplexity,
    "neighbour_same_video": nn_same,
    "neighbour_chance": chance,
    "prior": {"kind": kind, "alpha": alpha},
    "within_video_spread": {"iid": spread[0], kind: spread[1]},
    "progressive_spread_ratio": ratio,
}
results.save_results(out, "03_tsne", s.name, payload)
display(Markdown(render_section("03_tsne", payload)))
"""),
]


TRAIN_KNOBS = """image_steps = None  # image pre-training steps; None: the preset's
video_steps = None  # steps of every video run; None: the preset's
eval_samples = None  # generated clips per evaluation; None: the preset's"""
TRAIN_SETUP = dict(image_steps="image_steps", video_steps="video_steps", eval_samples="eval_samples")

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["04_alpha_sweep"] = [
    md("""
# 04 · Alpha sweep (Fig. 7)

Finetune the image model into a video model with mixed and with progressive noise over a grid of α, for
several seeds, next to the from-scratch baseline, and rank them by FVD. The paper (UCF-small, 3 seeds,
α ∈ {0, 0.1, 0.2, 0.5, 1, 2, 5, 10, ∞}) finds: finetuning almost always beats training from scratch, both
extremes of α are worse than the middle, and α = 1 (mixed) / α = 2 (progressive) work best.
α = 0 is i.i.d. finetuning and α = ∞ identical noise in every frame; both are the same run for the two
priors, so they are trained once. Runs live in the shared cache (`cache_dir`), so notebooks 05–07 reuse them.
Without the paper's I3D weights the metric is the lab's FVD (`FVD-lab`, see docs/metrics.md).
"""),
    parameters(
        "04_alpha_sweep",
        """alphas = None  # list of alphas; None: the preset's (the paper's grid under `ucf`)
seeds = None  # list of seeds per alpha; None: the preset's
"""
        + TRAIN_KNOBS,
    ),
    setup(alphas="alphas", seeds="seeds", **TRAIN_SETUP),
    code("""
from pyoco_lab.analysis.summary import render_section

plan = experiments.alpha_sweep_runs(s)
metric = experiments.SWEEP_METRIC
groups = {(kind, alpha): runs for kind, per_alpha in plan.items() for alpha, runs in per_alpha.items()}
scores = experiments.train_and_evaluate(groups, s, cache_dir)
"""),
    code("""
curves = {
    kind: {
        results.alpha_key(alpha): experiments.mean_std([m[metric] for m in scores[(kind, alpha)]])
        for alpha in s.alphas
    }
    for kind in s.kinds
}
scratch = experiments.mean_std([m[metric] for m in scores[("scratch", 0.0)]])
sign = 1 if experiments.LOWER_IS_BETTER[metric] else -1
best = {kind: min(curve, key=lambda a, c=curve: sign * c[a]["mean"]) for kind, curve in curves.items()}
fig = plots.metric_vs_alpha_figure(curves, metric=metric, scratch=scratch)
viz.save_figure(fig, out / "fig7_alpha_sweep.png")
plt.show()
"""),
    code("""
payload = {
    "metric": metric,
    "lower_is_better": experiments.LOWER_IS_BETTER[metric],
    "seeds": list(s.seeds),
    "curves": curves,
    "scratch": scratch,
    "best_alpha": best,
    "all_metrics": {f"{kind} {results.alpha_key(a)}": runs for (kind, a), runs in scores.items()},
}
results.save_results(out, "04_alpha_sweep", s.name, payload)
display(Markdown(render_section("04_alpha_sweep", payload)))
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["05_strategies"] = [
    md("""
# 05 · Training strategies (Table 5)

From scratch vs finetuning the image model with i.i.d. noise vs + mixed vs + progressive noise, scored by
IS, FVD and frame FID. Offline the lab's metrics stand in (IS-lab, FVD-lab, FD-frame-lab: a classifier
trained here, see docs/metrics.md); when the paper's I3D/C3D/Inception weight files are present,
`evaluate_run` adds the paper's metrics too. The runs are shared with notebook 04 through the cache.
"""),
    parameters(
        "05_strategies",
        """strategy_alphas = None  # [mixed alpha, progressive alpha]; None: the preset's (paper: [1, 2])
"""
        + TRAIN_KNOBS,
    ),
    setup(strategy_alphas="strategy_alphas", **TRAIN_SETUP),
    code("""
from pyoco_lab.analysis.summary import render_section

runs = experiments.strategy_runs(s)
scores = experiments.train_and_evaluate({name: [spec] for name, spec in runs.items()}, s, cache_dir)
rows = {name: values[0] for name, values in scores.items()}
"""),
    code("""
names = [m for m in (*experiments.TABLE5_METRICS, *experiments.PAPER_METRICS) if m in rows["scratch"]]
paper_column = {**experiments.TABLE5_METRICS, **experiments.PAPER_METRICS}
temporal_keys = ("frame-cosine", "motion-energy", "diversity")
payload = {
    "metrics": names,
    "paper_column": {m: paper_column[m] for m in names},
    "lower_is_better": {m: experiments.LOWER_IS_BETTER[m] for m in names},
    "strategy_alphas": {"mixed": s.strategy_alphas[0], "progressive": s.strategy_alphas[1]},
    "rows": {name: {m: row[m] for m in names} for name, row in rows.items()},
    "temporal": {name: {k: row.get(k) for k in temporal_keys} for name, row in rows.items()},
}
fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3), layout="constrained", squeeze=False)
for ax, m in zip(axes[0], names, strict=True):
    ax.bar(list(rows), [rows[r][m] for r in rows], color=["grey", "tab:blue", "tab:orange", "tab:green"])
    ax.set_title(f"{m} ({'lower' if experiments.LOWER_IS_BETTER[m] else 'higher'} is better)", fontsize=9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
viz.save_figure(fig, out / "table5_strategies.png")
plt.show()
results.save_results(out, "05_strategies", s.name, payload)
display(Markdown(render_section("05_strategies", payload)))
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["06_model_size"] = [
    md("""
# 06 · Model size (Fig. 8)

From scratch vs finetuned with mixed / progressive noise at three model sizes. The paper uses its 69M, 112M
and 253M UCF-101 models (Tables G–I; the `ucf` preset); smaller presets use a scaled family of the same
U-Net (lab-s and tiny on CPU for `quick`). Its findings: larger models are better, and finetuning with a
correlated prior beats training from scratch at every size.
"""),
    parameters(
        "06_model_size",
        """size_models = None  # list of model config names, small to large; None: the preset's
"""
        + TRAIN_KNOBS,
    ),
    setup(size_models="size_models", **TRAIN_SETUP),
    code("""
from pyoco_lab.analysis.summary import render_section
from pyoco_lab.models import count_parameters, get_config

plan = experiments.model_size_runs(s)
metric = experiments.SWEEP_METRIC
groups = {(model, name): [spec] for model, runs in plan.items() for name, spec in runs.items()}
scores = experiments.train_and_evaluate(groups, s, cache_dir)
sizes = list(plan)
parameters_count = [count_parameters(get_config(m)) for m in sizes]
table = {name: [scores[(m, name)][0][metric] for m in sizes] for name in ("scratch", "mixed", "progressive")}
fig = plots.model_size_figure(sizes, parameters_count, table, metric=metric)
viz.save_figure(fig, out / "fig8_model_size.png")
plt.show()
"""),
    code("""
payload = {
    "metric": metric,
    "lower_is_better": experiments.LOWER_IS_BETTER[metric],
    "sizes": sizes,
    "parameters": parameters_count,
    "strategy_alphas": {"mixed": s.strategy_alphas[0], "progressive": s.strategy_alphas[1]},
    "results": table,
}
results.save_results(out, "06_model_size", s.name, payload)
display(Markdown(render_section("06_model_size", payload)))
"""),
]

# ------------------------------------------------------------------------------------------------
NOTEBOOKS["07_sample_videos"] = [
    md("""
# 07 · Sample videos (Fig. 6)

Samples of models finetuned with α = 0, 1 and 10 side by side. The paper: α = 0 "reduces video quality and
diversity" (repeated samples, black borders) and α = 10 "yields motion artifacts" (the model has difficulty
generating proper motion). The temporal statistics make both visible in numbers: **diversity** (mean
distance between samples), **motion-energy** (mean squared change between frames) and **frame-cosine**
(similarity of consecutive frames; 1 = frozen), next to the same statistics of real held-out clips.
"""),
    parameters(
        "07_sample_videos",
        """sample_alphas = None  # alphas to compare; None: the preset's (paper: 0, 1, 10)
sample_prior = None  # "mixed" or "progressive"; None: the preset's
num_shown = 4  # samples shown per alpha
"""
        + TRAIN_KNOBS,
    ),
    setup(sample_alphas="sample_alphas", sample_prior="sample_prior", **TRAIN_SETUP),
    code("""
from pyoco_lab.analysis.summary import render_section
from pyoco_lab.metrics.evaluate import sample_videos
from pyoco_lab.train import load_denoiser

plan = experiments.sample_runs(s)
run_dirs = {alpha: experiments.ensure_run(spec, cache_dir) for alpha, spec in plan.items()}
evaluations = {alpha: experiments.evaluate(run_dir, s) for alpha, run_dir in run_dirs.items()}
"""),
    code("""
shown = {}
for alpha, run_dir in run_dirs.items():
    denoiser, config = load_denoiser(run_dir)
    shape = (config.num_frames, 3, config.resolution, config.resolution)
    shown[alpha] = sample_videos(
        denoiser, config.prior, shape, num_shown, num_steps=s.sample_steps, progress=False
    )
    name = f"samples_{s.sample_prior}_alpha{results.alpha_key(alpha)}"
    viz.save_video(torch.cat(list(shown[alpha]), dim=-1), out / f"{name}.gif")
    viz.save_video(torch.cat(list(shown[alpha]), dim=-1), out / f"{name}.mp4")
for alpha, videos in shown.items():
    labels = [f"α={alpha:g} #{i}" for i in range(len(videos))]
    display(HTML(viz.video_grid(videos, labels, title=f"α = {alpha:g}")))
"""),
    code("""
keys = ("diversity", "motion-energy", "frame-cosine")
stats = {results.alpha_key(a): {k: e["generated"][k] for k in keys} for a, e in evaluations.items()}
real = {k: next(iter(evaluations.values()))["real-test"][k] for k in keys}
fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), layout="constrained")
for ax, k in zip(axes, keys, strict=True):
    ax.bar([f"α={a}" for a in stats], [v[k] for v in stats.values()], color="tab:blue")
    ax.axhline(real[k], color="black", linestyle=":", label="real clips")
    ax.set_title(k, fontsize=9)
axes[0].legend(fontsize=8)
viz.save_figure(fig, out / "fig6_temporal_stats.png")
plt.show()
payload = {"prior": s.sample_prior, "stats": stats, "real": real, "num_samples": s.eval_samples}
results.save_results(out, "07_sample_videos", s.name, payload)
display(Markdown(render_section("07_sample_videos", payload)))
"""),
]


def build(stem: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell.id = str(index)  # what nbstripout writes too
        notebook.cells.append(cell)
    return notebook


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for stem, cells in NOTEBOOKS.items():
        path = HERE / f"{stem}.ipynb"
        text = nbformat.writes(build(stem, cells)) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date with notebooks/_build.py: {', '.join(stale)}; run python notebooks/_build.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
