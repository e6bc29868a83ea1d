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
# # 03 · t-SNE of noise maps (Fig. 2)
#
# (a) Noise maps obtained by inverting frames of several real videos with the image model (notebook 02's
# cached inversion), among i.i.d. reference noise: frames of one video cluster. (b) Samples of i.i.d. noise
# and of the progressive prior: the prior reproduces that clustering, i.i.d. noise does not.
# Interactive versions (hover: video and frame) are written as HTML next to the PNGs.

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/03_tsne"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
pretrain_image = None  # True: pre-train the image model here instead of the shipped one
tsne_videos = None  # videos shown; None: the preset's
tsne_frames = None  # frames per video; None: the preset's
tsne_perplexity = None  # t-SNE perplexity; None: the preset's
kind = "progressive"  # prior of panel (b)
alpha = 2.0  # its alpha (the paper's choice for progressive noise)
seed = 0  # t-SNE and reference-noise seed

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from pyoco_lab import viz
from pyoco_lab.analysis import notebook, results, study_runs

s, out = notebook.start(
    preset,
    figures_dir,
    tsne_videos=tsne_videos,
    tsne_frames=tsne_frames,
    tsne_perplexity=tsne_perplexity,
    pretrain_image=pretrain_image,
)

# %% [markdown]
# ## (a) Inverted noise maps of real videos

# %%
from pyoco_lab.analysis import inversion, tsne
from pyoco_lab.report import render_section

source = study_runs.ensure_image_model(s, cache_dir)  # the shipped image model, as notebook 02
inv = inversion.cached_inversion(
    source, cache_dir, count=s.inversion_videos, num_frames=s.inversion_frames, num_steps=s.inversion_steps
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

# %% [markdown]
# ## (b) i.i.d. noise vs the progressive prior

# %%
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

# %%
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
