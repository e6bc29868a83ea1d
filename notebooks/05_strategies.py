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
# # 05 · Training strategies (Table 5)
#
# From scratch vs finetuning the image model with i.i.d. noise vs + mixed vs + progressive noise, scored by
# IS, FVD and frame FID. Offline the lab's metrics stand in (IS-lab, FVD-lab, FD-frame-lab: a classifier
# trained here, see docs/metrics.md); when the paper's I3D/C3D/Inception weight files are present,
# `evaluate_run` adds the paper's metrics too. The runs are shared with notebook 04 through the cache.
# Verdicts cite content and motion side by side: the content score `KID-app` is the primary verdict metric for "does
# the video look like anything", the motion score `FD-motion-lab` is FVD-lab's motion half alone, and a metric is
# used for verdicts only if it passes its controls (notebook 04's table; reused from the cache).

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/05_strategies"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
pretrain_image = None  # True: pre-train the image model here instead of the shipped one
strategy_alphas = None  # [mixed alpha, progressive alpha]; None: the preset's (paper: [1, 2])
image_steps = None  # image pre-training steps; None: the preset's
video_steps = None  # steps of every video run; None: the preset's
eval_samples = None  # generated clips per evaluation; None: the preset's
seeds = None  # list of seeds per condition; None: the preset's
records_only = None  # True: from the committed run records only; a run without one stops it

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from pyoco_lab import viz
from pyoco_lab.analysis import experiments, notebook, plots, results, study_plans

s, out = notebook.start(
    preset,
    figures_dir,
    strategy_alphas=strategy_alphas,
    image_steps=image_steps,
    video_steps=video_steps,
    eval_samples=eval_samples,
    seeds=seeds,
    pretrain_image=pretrain_image,
    records_only=records_only,
)

# %%
from pyoco_lab.analysis.verdict_rules import control_notes
from pyoco_lab.report import render_section

runs = study_plans.strategy_runs(s)
scores = experiments.train_and_evaluate(runs, s, cache_dir)
# Table 5's "Image Diffusion" row: frame metrics of the image model every finetune starts from
image_row = experiments.image_model_scores(s, cache_dir)
# which metrics pass their controls (computed once per preset and cache, shared with notebook 04)
yardsticks = experiments.yardstick_record(experiments.metric_controls(s, cache_dir))

# %%
names = [m for m in (*experiments.TABLE5_METRICS, *experiments.PAPER_METRICS) if m in scores["scratch"][0]]
paper_column = {**experiments.TABLE5_METRICS, **experiments.PAPER_METRICS}
temporal_keys = ("motion-ratio", "frame-cosine", "diversity")
# every cell: mean over seeds with its 95% interval (experiments.summarise)
verdict_metrics = [m for m in experiments.VERDICT_METRICS if m not in names]
rows = {
    name: {m: experiments.summarise(values, m) for m in (*names, *verdict_metrics, *temporal_keys)}
    for name, values in scores.items()
}
payload = {
    "metrics": names,
    "paper_column": {m: paper_column[m] for m in names},
    "lower_is_better": {m: experiments.LOWER_IS_BETTER[m] for m in names},
    "strategy_alphas": {"mixed": s.strategy_alphas[0], "progressive": s.strategy_alphas[1]},
    "seeds": list(s.seeds),
    "eval_samples": s.eval_samples,
    "rows": {
        # one image model: its cells carry that evaluation's bootstrap interval
        "image": {
            m: experiments.summarise([image_row], m) if m in image_row else None
            for m in (*names, *verdict_metrics)
        },
        **{name: {m: row[m] for m in (*names, *verdict_metrics)} for name, row in rows.items()},
    },
    "sampler": s.sampler.record(),
    "temporal": {name: {k: row[k] for k in temporal_keys} for name, row in rows.items()},
    **yardsticks,
}
panels = [*experiments.VERDICT_METRICS, *(m for m in names if m not in experiments.VERDICT_METRICS)]
fig = plots.controls_figure(
    {name: row for name, row in rows.items()}, panels, notes=control_notes(yardsticks, panels)
)
viz.save_figure(fig, out / "table5_strategies.png")
plt.show()
results.save_results(out, "05_strategies", s.name, payload)
display(Markdown(render_section("05_strategies", payload)))
