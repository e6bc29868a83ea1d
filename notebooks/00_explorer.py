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
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # PYoCo explorer: move alpha, watch the noise
#
# Interactive companion to *Preserve Your Own Correlation* (Ge et al., 2023), Section 4. Open it with `.venv/bin/jupyter lab notebooks/00_explorer.ipynb` and run all cells.
#
# - **noise prior** tab: prior kind, alpha (log slider over 0.01–100 plus the `α = 0` and `α = ∞` ends), frames and seed. The closed-form frame correlation (eq. 3 / eq. 4), the one measured on sampled noise, the correlation-vs-distance curve and the noise video itself update as you move the controls.
# - **generate** tab: sample a shipped model of the α zoo (`pretrained:zoo-32-*`) or your own video run under `runs/` at its prior (or another), sampler and steps; *Gallery* shows several alphas looping in sync.
# - **inversion playground** tab: invert a real clip with the image model and compare the cosine similarity of its noise maps with the priors (Fig. 2).
#
# Run headlessly (papermill), the notebook leaves static PNG/GIF copies of its figures under `output_dir`.

# %% tags=["parameters"]
kind = "progressive"  # noise prior: iid, mixed (eq. 3) or progressive (eq. 4)
alpha = 2.0  # prior strength in [0, inf]; the string "inf" means identical frames
num_frames = 16  # frames of the noise video
seed = 0  # seed of the sampled noise (and of generated videos)
runs_root = ""  # folder searched for training runs (empty: $PYOCO_RUNS, else the repo runs/ folder)
run_dir = ""  # a specific video run to generate with (empty: newest quick run found)
image_run_dir = ""  # a specific image run for inversion (empty: newest found)
sampler = "heun"  # heun, euler, deis, rk3 or stochastic
num_steps = 18  # sampler steps
gallery_alphas = [0.0, 0.5, 2.0, 10.0, "inf"]  # alphas shown side by side in the gallery
zoo_seeds = [0, 1, 2]  # the zoo tab: one column per seed, the same seeds in every model's row
clip_index = 0  # which test clip the inversion playground inverts
run_models = False  # True: also sample a video + gallery and invert a clip for the static copies (minutes)
output_dir = "runs/explorer"  # static copies of the figures (relative to the repo root; runs/ is not tracked)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import HTML, display

from pyoco_lab.viz import correlation_figure, save_figure, save_video, video_grid, video_html
from pyoco_lab.viz import explorer as ex

out = Path(output_dir)
if not out.is_absolute():
    out = ex.default_runs_root().parent / out
out.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The prior (static copy)
# Closed form next to the correlation measured on sampled noise, and the noise video.

# %%
figure, prior = ex.prior_figure(kind, alpha, num_frames, seed)
save_figure(figure, out / "prior_correlation.png")
plt.show()
save_video(prior["noise"], out / "noise_video.gif", value_range=ex.NOISE_RANGE)
display(HTML(video_html(prior["noise"], value_range=ex.NOISE_RANGE, caption="noise video (sample 0, ±3σ)")))

# %%
figure = ex.alpha_sweep_figure(gallery_alphas, num_frames)
save_figure(figure, out / "alpha_sweep.png")
plt.show()

# %% [markdown]
# ## Live explorer
# Move the controls: every view updates without re-running cells.

# %%
explorer = ex.Explorer(
    kind,
    alpha,
    num_frames,
    seed,
    runs_root=runs_root or None,
    run_dir=run_dir or None,
    image_run_dir=image_run_dir or None,
    sampler=sampler,
    num_steps=num_steps,
    gallery_alphas=gallery_alphas,
    zoo_seeds=zoo_seeds,
)
display(explorer.widget)

# %% [markdown]
# ## The zoo (static copy)
# Every video model side by side, shown at once from the clips shipped with the lab (or cached before).

# %%
display(HTML(explorer.zoo.status.value), HTML(explorer.zoo.grid.value))

# %% [markdown]
# ## Generated videos (static copy)
# Samples the first model of the generate tab (a shipped α-zoo model, else a video run under `runs/`).

# %%
panel = explorer.generate
if not (run_models and panel.available):
    why = "run_models = False: press Generate above, or run with -p run_models True for a static copy"
    print(
        f"skipped: no video run found ({ex.TRAIN_HINT} --phase video ...)"
        if run_models
        else f"skipped ({why})"
    )
else:
    video = panel.generate()
    videos = panel.generate_gallery()
    if video is None or videos is None:
        raise RuntimeError(f"generation failed: {panel.status.value}")
    save_video(video, out / "generated.gif")
    # captions from what the panel sampled (a model's own or recorded prior), not this notebook's parameters
    display(HTML(video_html(video, caption=panel.label)))
    display(HTML(video_grid(videos, panel.gallery_labels, title=f"{panel.gallery_kind} (looping in sync)")))

# %% [markdown]
# ## Inversion playground (static copy)
# Needs a trained image run and the embedded dataset.

# %%
panel = explorer.inversion
if not (run_models and panel.available):
    why = "run_models = False: press 'Invert clip' above, or run with -p run_models True for a static copy"
    print(
        f"skipped: no image run found ({ex.TRAIN_HINT} --phase image ...)"
        if run_models
        else f"skipped ({why})"
    )
else:
    panel.clip.value = clip_index
    result = panel.invert()
    if result is None:
        raise RuntimeError(f"inversion failed: {panel.status.value}")
    figure = correlation_figure(result["matrices"], title="inverted noise vs priors")
    save_figure(figure, out / "inversion_similarity.png")
    plt.show()
    display(HTML(panel.views.value))
