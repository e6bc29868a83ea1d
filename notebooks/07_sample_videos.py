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
# # 07 · Sample videos (Fig. 6)
#
# Samples of models finetuned with α = 0, 1 and 10 side by side. The paper: α = 0 "reduces video quality and
# diversity" (repeated samples, black borders) and α = 10 "yields motion artifacts" (the model has difficulty
# generating proper motion). The temporal statistics make both visible in numbers: **diversity** (mean
# distance between samples), **motion-energy** (mean squared change between frames) and **frame-cosine**
# (similarity of consecutive frames; 1 = frozen), next to the same statistics of real held-out clips; and
# **scene-held** (the share of clips with no cut to another scene, `metrics.scene_consistency`).

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/07_sample_videos"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
pretrain_image = None  # True: pre-train the image model here instead of the shipped one
sample_alphas = None  # alphas to compare; None: the preset's (paper: 0, 1, 10)
sample_prior = None  # "mixed" or "progressive"; None: the preset's
sample_with = None  # "recorded" (a shipped model's recorded sampling prior) or "training"; None: preset's
num_shown = 4  # samples shown per alpha
image_steps = None  # image pre-training steps; None: the preset's
video_steps = None  # steps of every video run; None: the preset's
eval_samples = None  # generated clips per evaluation; None: the preset's

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, Markdown, display

from pyoco_lab import viz
from pyoco_lab.analysis import experiments, notebook, plots, results, study_plans, study_runs

s, out = notebook.start(
    preset,
    figures_dir,
    sample_alphas=sample_alphas,
    sample_prior=sample_prior,
    sample_with=sample_with,
    image_steps=image_steps,
    video_steps=video_steps,
    eval_samples=eval_samples,
    pretrain_image=pretrain_image,
)

# %%
from pyoco_lab.report import render_section

plan = study_plans.sample_runs(s)
# A preset's committed records answer the evaluations and its shipped alpha zoo the weights (cpu-32), so
# nothing is trained that the lab already ships; otherwise each run is trained (or found) in the cache.
evaluations = {alpha: experiments.run_evaluation(spec, s, cache_dir) for alpha, spec in plan.items()}
sources = {alpha: study_runs.run_weights(spec, cache_dir) for alpha, spec in plan.items()}

# %%
# Each model with the preset's sampler and, for a shipped model, the prior it records as keeping scenes best
# (issue #38; sample_with="training" shows it with its training prior instead), said under each row.
shown, captions = {}, {}
for alpha, source in sources.items():
    prior, captions[alpha] = experiments.shown_prior(source, s)
    shown[alpha] = experiments.draw_samples(source, s, num_shown, prior=prior)
    name = f"samples_{s.sample_prior}_alpha{results.alpha_key(alpha)}"
    viz.save_video(torch.cat(list(shown[alpha]), dim=-1), out / f"{name}.gif")
    viz.save_video(torch.cat(list(shown[alpha]), dim=-1), out / f"{name}.mp4")
for alpha, videos in shown.items():
    labels = [f"α={alpha:g} #{i}" for i in range(len(videos))]
    display(HTML(viz.video_grid(videos, labels, title=f"α = {alpha:g}: {captions[alpha]}")))

# %%
# scene-held (issue #38): the share of clips that keep one scene; evaluations recorded before it lack it
keys = experiments.present_measures(
    (e["generated"] for e in evaluations.values()),
    ("diversity", "motion-energy", "frame-cosine", "scene-held"),
)
# one run per alpha: each value with the bootstrap interval over its clips (none for diversity, a pairwise mean)
stats = {
    results.alpha_key(a): {k: experiments.summarise([e["generated"]], k) for k in keys}
    for a, e in evaluations.items()
}
real = {k: experiments.summarise([next(iter(evaluations.values()))["real-test"]], k) for k in keys}
fig = plots.controls_figure({**{f"α={a}": v for a, v in stats.items()}, "real clips": real}, keys)
viz.save_figure(fig, out / "fig6_temporal_stats.png")
plt.show()
payload = {
    "sampler": s.sampler.record(),
    "prior": s.sample_prior,
    "stats": stats,  # the evaluations: each model sampled with its training prior
    "shown_with": {results.alpha_key(a): caption for a, caption in captions.items()},  # the GIFs' priors
    "train_extra": s.sample_extra,  # Fig. 6's runs' own recipe changes (the shipped zoo's), if any
    "real": real,
    "num_samples": s.eval_samples,
}
results.save_results(out, "07_sample_videos", s.name, payload)
display(Markdown(render_section("07_sample_videos", payload)))
