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
# Section 4's evidence for correlated noise: take a pretrained **image** diffusion model, run its
# probability-flow ODE (eq. 2) *backwards* (σ from ~0 up to σ_max) on frames sampled at random positions across
# held-out real videos (Fig. 2's caption), and compare the noise maps it lands on. The paper finds frames of
# the same video map to correlated noise (0.206 ± 0.156 average pairwise cosine similarity) while frames of
# different videos do not (0.001 ± 0.009). Two control rows the paper lacks show how much of that is pixel
# similarity (the same statistic on raw pixels) and what independent noise gives (the floor).
#
# Here we also measure how the similarity decays with frame distance, fit the α of the mixed and the
# progressive prior to that decay (a data-driven α the paper does not give), and check that the inverted maps
# look like unit Gaussian noise — if they do not, the image model is undertrained and the table says little.

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/02_inversion"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
inversion_videos = None  # held-out clips to invert; None: the preset's
inversion_frames = None  # frames per clip; None: the preset's
inversion_steps = None  # ODE steps from sigma_min to sigma_max; None: the preset's
image_steps = None  # image pre-training steps (only when the image model is trained here); None: the preset's
pretrain_image = None  # True: pre-train the image model here instead of the shipped one; None: the preset's
frames_per_video = 16  # Table 1: frames drawn at random positions across each held-out source video
quality_samples = 512  # image-model samples for the frame yardsticks (the controls separate at this N)
seed = 0  # which held-out frames and clips

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from pyoco_lab import noise, viz
from pyoco_lab.analysis import notebook, plots, results, study_runs

s, out = notebook.start(
    preset,
    figures_dir,
    inversion_videos=inversion_videos,
    inversion_frames=inversion_frames,
    inversion_steps=inversion_steps,
    image_steps=image_steps,
    pretrain_image=pretrain_image,
)

# %% [markdown]
# ## The image model (shipped with the lab, or trained once into the cache)
#
# Its samples beside real training frames, measured against the training distribution with the frame
# yardsticks (`pyoco_lab.metrics.yardsticks`, docs/metrics.md) — KID-app (0 = real), the two-sample test
# (0.5 = indistinguishable from real frames), precision / recall and density / coverage in the appearance
# space, and the memorisation check — next to the controls that prove each measure ranks real frames above
# noise, shuffled pixels, flat colour and blur. 95% intervals: bootstrap (KID-app), binomial (two-sample test).

# %%
from pyoco_lab.analysis import image_model, inversion
from pyoco_lab.report import PAPER, image_quality_lines, render_section

source = study_runs.ensure_image_model(s, cache_dir)
print("image model:", source)
quality = image_model.image_model_quality(
    source,
    cache_dir,
    num_samples=quality_samples,
    sampler=s.sampler.kind,  # the preset's sampler, as every video row and Table 5's image row use
    num_steps=s.sampler.steps,
    sampler_options=s.sampler.options(),
    seed=seed,
)
fig = image_model.samples_beside_real_figure(quality["samples"], quality["real"], title=str(source))
viz.save_figure(fig, out / "image_model_samples.png")
plt.show()
display(Markdown("\n".join(image_quality_lines(quality, str(source)))))

# %% [markdown]
# ## Table 1: frames at random positions across each held-out video, inverted

# %%
sampled = inversion.cached_frame_inversion(
    source, cache_dir, per_source=frames_per_video, num_steps=s.inversion_steps, seed=seed
)
rows = inversion.table1_rows(sampled, seed=seed)
table = rows["noise maps (inverted)"]
print(
    f"{len(sampled['ids'])} frames from {table['num_sources']} held-out source videos; "
    f"for independent unit noise of this size the similarity is 0 ± {table['iid_floor_std']:.3f}"
)
for name, row in rows.items():
    same, different = row["same_video"], row["different_video"]
    print(
        f"{name:>22}: same video {same['mean']:.3f} ± {same['std']:.3f} ({same['count']} pairs), "
        f"different video {different['mean']:.3f} ± {different['std']:.3f} ({different['count']} pairs)"
    )
fig = plots.table1_figure(table, PAPER["table1"])
viz.save_figure(fig, out / "table1.png")
plt.show()
fig = viz.noise_frames_figure(sampled["frames"][:8], title="held-out frames", value_range=(-1, 1))
viz.save_figure(fig, out / "frames.png")
fig = viz.noise_frames_figure(sampled["maps"][:8], title="their inverted noise maps")
viz.save_figure(fig, out / "inverted_maps.png")
plt.show()

# %% [markdown]
# ## Do the inverted maps look like unit Gaussian noise?
#
# Targets for the shipped model: per-map variance within 1 ± 0.1, |mean| and |lag-1 spatial autocorrelation|
# ≤ 0.1, and a different-video spread of at most 2× the i.i.d. floor. Missing them means Table 1 says little.

# %%
gauss = inversion.gaussianity(sampled["maps"], different_video_std=table["different_video"]["std"])
print(
    f"per-map mean {gauss['mean']:.3f} ± {gauss['mean_std']:.3f}, variance {gauss['variance']:.3f} ± "
    f"{gauss['variance_std']:.3f}, lag-1 spatial autocorrelation {gauss['autocorrelation']:.3f} ± "
    f"{gauss['autocorrelation_std']:.3f}, different-video std {gauss['floor_ratio']:.2f}x the floor "
    f"({gauss['num_maps']} maps)"
)
display(Markdown(("✅ " if gauss["looks_gaussian"] else "⚠️ ") + gauss["message"]))

# %% [markdown]
# ## Similarity vs frame distance, and the α that fits it
#
# Here consecutive frames of held-out clips are inverted (distance = frames apart within a clip). Mixed noise
# predicts a constant α²/(1+α²) at every distance; progressive noise predicts (α/√(1+α²))^d.

# %%
inv = inversion.cached_inversion(
    source,
    cache_dir,
    count=s.inversion_videos,
    num_frames=s.inversion_frames,
    num_steps=s.inversion_steps,
    seed=seed,
)
maps = inv["maps"]
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
# ## Next to the paper (as in figures/SUMMARY.md)

# %%
payload = {
    "image_model": str(source),
    "image_quality": {k: v for k, v in quality.items() if k not in ("samples", "real")},
    "num_frames_sampled": int(len(sampled["ids"])),
    "frames_per_video": frames_per_video,
    "num_sources": table["num_sources"],
    "inversion_steps": s.inversion_steps,
    **table,
    "controls": {name: row for name, row in rows.items() if name != "noise maps (inverted)"},
    "num_clips": int(maps.shape[0]),
    "num_frames": int(maps.shape[1]),
    "by_distance": by_distance,
    "fitted_alpha": fitted,
    "gaussianity": gauss,
}
results.save_results(out, "02_inversion", s.name, payload)
display(Markdown(render_section("02_inversion", payload)))
