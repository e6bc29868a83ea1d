# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Noise priors (Section 4, eqs. 3–4)
#
# PYoCo replaces the i.i.d. noise of video diffusion with noise that is **correlated across frames**:
#
# * **mixed** (eq. 3): every frame = a shared noise map + its own: corr(εⁱ, εʲ) = α²/(1+α²) for i ≠ j;
# * **progressive** (eq. 4): each frame = a scaled copy of the previous one + new noise, an AR(1) process:
#   corr(εⁱ, εʲ) = (α/√(1+α²))^|i−j|.
#
# Each frame stays exactly N(0, I). This notebook compares the closed-form correlation matrices with the ones
# measured on sampled noise over a range of α, and shows the noise "videos". Run it with
# `pyoco-lab reproduce --only 01` or directly in Jupyter.

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/01_noise_priors"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
alphas = None  # list of alphas to compare; None: the preset's
num_frames = None  # frames per noise video; None: the preset's
num_samples = None  # noise videos drawn per prior; None: the preset's
seed = 0  # random seed

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

from pyoco_lab import noise, viz
from pyoco_lab.analysis import notebook, plots, results

s, out = notebook.start(
    preset, figures_dir, noise_alphas=alphas, noise_frames=num_frames, noise_samples=num_samples
)

# %% [markdown]
# ## Closed form vs sampled correlation

# %%
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

# %% [markdown]
# Interactive version (hover for values) of the paper's recommended settings, mixed α = 1 and progressive α = 2:

# %%
matrices = {
    "i.i.d.": noise.frame_correlation("iid", s.noise_frames),
    "mixed α=1": noise.frame_correlation("mixed", s.noise_frames, 1.0),
    "progressive α=2": noise.frame_correlation("progressive", s.noise_frames, 2.0),
}
figure = viz.correlation_figure_plotly(matrices, title="closed-form frame correlation")
results.save_plotly_html(figure, out / "correlation_recommended.html")
figure

# %% [markdown]
# ## Noise "videos"
#
# Each tile is one noise video, frames played in a loop (values −3…3 mapped to 0…255). i.i.d. noise flickers;
# mixed noise shares a fixed pattern in every frame; progressive noise drifts slowly.

# %%
generator = torch.Generator().manual_seed(seed)
shape = (1, s.noise_frames, 3, 32, 32)
priors_shown = {"i.i.d.": ("iid", 0.0), "mixed α=1": ("mixed", 1.0), "progressive α=2": ("progressive", 2.0)}
priors_shown["progressive α=10"] = ("progressive", 10.0)
videos = {}
for label, (kind, alpha) in priors_shown.items():
    videos[label] = noise.sample_noise(kind, shape, alpha, generator=generator)[0]
    viz.save_video(videos[label], out / f"noise_{kind}_{results.alpha_key(alpha)}.gif", value_range=(-3, 3))
display(HTML(viz.video_grid(list(videos.values()), list(videos), value_range=(-3, 3), fps=4)))

# %% [markdown]
# ## The two limits of α
#
# * **α → 0**: the shared part vanishes; both priors become i.i.d. noise — the naive extension of the image
#   prior (finetuning with it is the paper's "Finetuning from ID" baseline).
# * **α → ∞**: the individual part vanishes; every frame gets the *same* noise map, so a model trained with it
#   turns the video into a frozen image ("produces frozen videos during the inference time", Section 5).
#
# Correlation at frame distance 1 and at the last frame in the two limits:

# %%
limits = priors.limit_table(s.noise_frames)
for name, (d1, dlast) in limits.items():
    print(f"{name:24s} distance 1: {d1:.3f}   distance {s.noise_frames - 1}: {dlast:.3f}")

# %%
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
