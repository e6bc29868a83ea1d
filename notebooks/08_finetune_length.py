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
# # 08 · Finetune length and flicker
#
# Finetuning an image model into a video model starts from frames that know nothing of each other: with
# i.i.d. noise (α = 0) every frame is sampled from its own noise, so an undertrained video model *flickers*
# (frames change far more than real video does), while α = ∞ (the same noise in every frame) freezes. This
# notebook measures, on the checkpoints of notebook 04's runs, how motion energy (relative to real clips) and
# FVD-lab evolve with the number of finetune steps for α = 0, the paper's α and ∞ — i.e. how much finetuning
# the sweep needs before its ranking is about the prior rather than about flicker. The content score `KID-app` (the
# primary verdict metric for "does the video look like anything") and the motion score `FD-motion-lab` are tracked
# beside FVD-lab, each marked when it fails its controls (notebook 04's table; reused from the cache).

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/08_finetune_length"  # PNG and results.json go here
cache_dir = "../runs/reproduce"  # trained models, shared by all notebooks
pretrain_image = None  # True: pre-train the image model here instead of the shipped one
seeds = None  # list of seeds per prior; None: the preset's
curve_steps = None  # list of finetune steps (checkpoints the runs keep); None: the preset's
curve_samples = None  # generated clips per point; None: the preset's
records_only = None  # True: from the committed run records only; a run without one stops it

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from pyoco_lab import viz
from pyoco_lab.analysis import experiments, notebook, plots, results, study_plans, study_runs
from pyoco_lab.report import render_section

s, out = notebook.start(
    preset,
    figures_dir,
    seeds=seeds,
    curve_steps=curve_steps,
    curve_samples=curve_samples,
    pretrain_image=pretrain_image,
    records_only=records_only,
)

# %%
metric = experiments.SWEEP_METRIC
curve = study_plans.finetune_curve(s, cache_dir)
yardsticks = experiments.yardstick_record(experiments.metric_controls(s, cache_dir))
names = {condition: f"{condition[0]} α={results.alpha_key(condition[1])}" for condition in curve}
# scene-held (issue #38: does a clip keep one scene?) where every evaluation has it (committed records may not)
every_row = [row for points in curve.values() for rows in points.values() for row in rows]
measures = experiments.present_measures(
    every_row, ("motion-ratio", *experiments.VERDICT_METRICS, "scene-held")
)
curves = {
    m: {
        names[condition]: {str(step): experiments.summarise(rows, m) for step, rows in points.items()}
        for condition, points in curve.items()
    }
    for m in measures
}
fig = plots.finetune_curve_figure(curves, measures)
viz.save_figure(fig, out / "finetune_length.png")
plt.show()

# %%
payload = {
    "sampler": s.sampler.record(),
    "metric": metric,
    "seeds": list(s.seeds),
    "curve_samples": s.curve_samples,
    "curves": curves,
    # the rule that sets a study's finetune length (issue #24), and the length the preset's sweep uses
    "length_prior": f"progressive α={results.alpha_key(s.strategy_alphas[1])}",
    "video_steps": study_runs.video_run(s, "iid", 0.0).config.steps,
    # where the curve's runs stop (its cap): the length when no step is flicker-free
    "curve_end": max(runs[0].config.steps for runs in study_plans.curve_runs(s).values()),
    "all_metrics": {
        names[condition]: {str(step): rows for step, rows in points.items()}
        for condition, points in curve.items()
    },
    **yardsticks,
}
results.save_results(out, "08_finetune_length", s.name, payload)
display(Markdown(render_section("08_finetune_length", payload)))
