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
# # 02 · Inversion and the cosine-similarity table (Table 1)
#
# Section 4's evidence for correlated noise: pre-train an **image** diffusion model, run its probability-flow
# ODE (eq. 2) *backwards* (σ from ~0 up to σ_max) on every frame of held-out real clips, and compare the noise
# maps it lands on. The paper finds frames of the same video map to correlated noise (0.206 ± 0.156 average
# pairwise cosine similarity) while frames of different videos do not (0.001 ± 0.009).
#
# Here we also measure how the similarity decays with frame distance, fit the α of the mixed and the
# progressive prior to that decay (a data-driven α the paper does not give), and check that the inverted maps
# look like unit Gaussian noise — if they do not, the image model is undertrained and the table says little.

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/02_inversion"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
inversion_videos = None  # held-out clips to invert; None: the preset's
inversion_frames = None  # frames per clip; None: the preset's
inversion_steps = None  # ODE steps from sigma_min to sigma_max; None: the preset's
image_steps = None  # image pre-training steps; None: the preset's
seed = 0  # which held-out clips

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from pyoco_lab import noise, viz
from pyoco_lab.analysis import experiments, notebook, plots, results

s, out = notebook.start(
    preset,
    figures_dir,
    inversion_videos=inversion_videos,
    inversion_frames=inversion_frames,
    inversion_steps=inversion_steps,
    image_steps=image_steps,
)

# %% [markdown]
# ## The image model (trained once, shared through the cache)

# %%
from pyoco_lab.analysis import inversion
from pyoco_lab.analysis.summary import PAPER, render_section

image_dir = experiments.ensure_run(experiments.image_run(s), cache_dir)
print("image model:", image_dir)

# %% [markdown]
# ## Invert held-out clips frame by frame

# %%
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

# %% [markdown]
# ## Table 1: cosine similarity of the inverted noise

# %%
table = inversion.cosine_similarity_table(maps, ids)
print(f"for independent unit noise of this size the similarity is 0 ± {table['iid_floor_std']:.3f}")
if "same_source" in table:
    shared = table["same_source"]
    print(f"other clips of the same source (in neither row): {shared['mean']:.3f} ± {shared['std']:.3f}")
fig = plots.table1_figure(table, PAPER["table1"])
viz.save_figure(fig, out / "table1.png")
plt.show()

# %% [markdown]
# ## Similarity vs frame distance, and the α that fits it
#
# Mixed noise predicts a constant α²/(1+α²) at every distance; progressive noise predicts (α/√(1+α²))^d.

# %%
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

# %% [markdown]
# ## Do the inverted maps look like unit Gaussian noise?

# %%
gauss = inversion.gaussianity(maps)
print(
    f"mean {gauss['mean']:.3f}, variance {gauss['variance']:.3f}, "
    f"lag-1 spatial autocorrelation {gauss['autocorrelation']:.3f}"
)
display(Markdown(("✅ " if gauss["looks_gaussian"] else "⚠️ ") + gauss["message"]))

# %% [markdown]
# ## Next to the paper (as in figures/SUMMARY.md)

# %%
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
