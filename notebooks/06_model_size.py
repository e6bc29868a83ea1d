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
# # 06 · Model size (Fig. 8)
#
# From scratch vs finetuned with mixed / progressive noise at three model sizes. The paper uses its 69M, 112M
# and 253M UCF-101 models (Tables G–I; the `ucf` preset); smaller presets use a scaled family of the same
# U-Net (lab-s and tiny on CPU for `quick`). Its findings: larger models are better, and finetuning with a
# correlated prior beats training from scratch at every size. Verdicts cite content (`KID-app`, the primary verdict
# metric for "does the video look like anything") and motion (`FD-motion-lab`) beside FVD-lab, each used for verdicts
# only if it passes its controls (notebook 04's table; reused from the cache).

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/06_model_size"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
pretrain_image = None  # True: pre-train the image model here instead of the shipped one
size_models = None  # list of model config names, small to large; None: the preset's
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
    size_models=size_models,
    image_steps=image_steps,
    video_steps=video_steps,
    eval_samples=eval_samples,
    seeds=seeds,
    pretrain_image=pretrain_image,
    records_only=records_only,
)

# %%
from pyoco_lab.models import count_parameters, get_config
from pyoco_lab.report import render_section

plan = study_plans.model_size_runs(s)
metric = experiments.SWEEP_METRIC
groups = {(model, name): runs for model, per_model in plan.items() for name, runs in per_model.items()}
scores = experiments.train_and_evaluate(groups, s, cache_dir)
sizes = list(plan)
yardsticks = experiments.yardstick_record(experiments.metric_controls(s, cache_dir))
parameters_count = [count_parameters(get_config(m)) for m in sizes]
# every point: mean over seeds with its 95% interval (experiments.summarise)
by_metric = {
    measure: {
        name: [experiments.summarise(scores[(m, name)], measure) for m in sizes]
        for name in ("scratch", "mixed", "progressive")
    }
    for measure in (*experiments.VERDICT_METRICS, "motion-ratio")
}
table = by_metric[metric]
fig = plots.model_size_figure(sizes, parameters_count, table, metric=metric)
viz.save_figure(fig, out / "fig8_model_size.png")
plt.show()

# %%
payload = {
    "sampler": s.sampler.record(),
    "metric": metric,
    "lower_is_better": experiments.LOWER_IS_BETTER[metric],
    "seeds": list(s.seeds),
    "eval_samples": s.eval_samples,
    "sizes": sizes,
    "parameters": parameters_count,
    "strategy_alphas": {"mixed": s.strategy_alphas[0], "progressive": s.strategy_alphas[1]},
    "results": table,
    "by_metric": {m: by_metric[m] for m in experiments.VERDICT_METRICS},
    "temporal": {"motion-ratio": by_metric["motion-ratio"]},
    **yardsticks,
}
results.save_results(out, "06_model_size", s.name, payload)
display(Markdown(render_section("06_model_size", payload)))
