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
# # 04 · Alpha sweep (Fig. 7)
#
# Finetune the image model into a video model with mixed and with progressive noise over a grid of α, for
# several seeds, next to the from-scratch baseline, and rank them with 95% intervals. The paper (UCF-small, 3 seeds,
# α ∈ {0, 0.1, 0.2, 0.5, 1, 2, 5, 10, ∞}) finds: finetuning almost always beats training from scratch, both
# extremes of α are worse than the middle, and α = 1 (mixed) / α = 2 (progressive) work best.
# α = 0 is i.i.d. finetuning and α = ∞ identical noise in every frame; both are the same run for the two
# priors, so they are trained once. Runs live in the shared cache (`cache_dir`), so notebooks 05–07 reuse them.
# The paper ranks by FVD; without its I3D weights the lab's FVD (`FVD-lab`, see docs/metrics.md) stands in. Verdicts
# cite content and motion side by side: the content score `KID-app` (the clips' frames vs training frames) is the
# primary verdict metric for "does the video look like anything", the motion score `FD-motion-lab` the motion half
# of FVD-lab alone; a metric is used for verdicts only if it passes its controls (the table below).

# %% tags=["parameters"]
preset = "quick"  # smoke | quick | cpu-long | standard | ucf (see docs/reproduce.md)
figures_dir = "../figures/04_alpha_sweep"  # PNG, HTML and results.json go here
cache_dir = "../runs/reproduce"  # trained models and inverted maps, shared by all notebooks
pretrain_image = None  # True: pre-train the image model here instead of the shipped one
alphas = None  # list of alphas; None: the preset's (the paper's grid under `ucf`)
seeds = None  # list of seeds per alpha; None: the preset's
image_steps = None  # image pre-training steps; None: the preset's
video_steps = None  # steps of every video run; None: the preset's
eval_samples = None  # generated clips per evaluation; None: the preset's
records_only = None  # True: render from the committed run records only, naming the runs that have none

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from pyoco_lab import viz
from pyoco_lab.analysis import experiments, notebook, plots, results, study_plans, study_runs

s, out = notebook.start(
    preset,
    figures_dir,
    alphas=alphas,
    seeds=seeds,
    image_steps=image_steps,
    video_steps=video_steps,
    eval_samples=eval_samples,
    pretrain_image=pretrain_image,
    records_only=records_only,
)

# %%
from pyoco_lab.analysis.verdict_rules import control_notes
from pyoco_lab.report import render_section

plan = study_plans.alpha_sweep_runs(s)
metric = experiments.SWEEP_METRIC
groups = {(kind, alpha): runs for kind, per_alpha in plan.items() for alpha, runs in per_alpha.items()}
scores = experiments.train_and_evaluate(groups, s, cache_dir, allow_missing=True)
not_run = experiments.unrecorded_runs(groups, s)  # empty unless records_only
# The metrics' controls (real training clips and five corruptions of them): same N, same reference
controls = experiments.metric_controls(s, cache_dir)
verdict_metrics = experiments.VERDICT_METRICS

# %% [markdown]
# Every point is a mean over the seeds with its 95% interval (t over seeds; with one seed, the bootstrap
# interval of that evaluation's clips). `motion-ratio` is motion energy over the real clips' (1 = real motion,
# 0 = frozen, ≫ 1 = flicker). The grey band is real clips: the best score a metric can give at this N.

# %%
temporal = ("motion-ratio", "frame-cosine")
curves = {
    name: {
        kind: {
            results.alpha_key(a): experiments.summarise(scores[(kind, a)], name)
            for a in s.alphas
            if scores[(kind, a)]
        }
        for kind in s.kinds
    }
    for name in (*verdict_metrics, *temporal)
}
scratch = {
    name: experiments.summarise(scores[("scratch", 0.0)], name) for name in (*verdict_metrics, *temporal)
}
yardsticks = experiments.yardstick_record(controls)
control_table = yardsticks["controls"]
best = {kind: results.alpha_key(a) for kind, a in study_plans.best_alphas(scores, s).items()}
fig = plots.metric_vs_alpha_figure(
    curves[metric], metric=metric, scratch=scratch[metric], floor=control_table["real"][metric]
)
viz.save_figure(fig, out / "fig7_alpha_sweep.png")
plt.show()
for name in (experiments.CONTENT_METRIC, experiments.MOTION_METRIC):
    fig = plots.metric_vs_alpha_figure(
        curves[name], metric=name, scratch=scratch[name], floor=control_table["real"][name]
    )
    viz.save_figure(fig, out / f"fig7_{name}.png")
    plt.show()
fig = plots.metric_vs_alpha_figure(
    curves["motion-ratio"],
    metric="motion-ratio",
    scratch=scratch["motion-ratio"],
    floor=control_table["real"]["motion-ratio"],
    floor_label="real clips (1 = real motion)",
)
viz.save_figure(fig, out / "fig7_motion_ratio.png")
plt.show()
fig = plots.controls_figure(control_table, list(control_table["real"]), notes=control_notes(yardsticks))
viz.save_figure(fig, out / "metric_controls.png")
plt.show()

# %%
payload = {
    "sampler": s.sampler.record(),
    "metric": metric,
    "lower_is_better": experiments.LOWER_IS_BETTER[metric],
    "seeds": list(s.seeds),
    "alphas": [results.alpha_key(a) for a in s.alphas],
    "not_run": not_run,
    "eval_samples": s.eval_samples,
    "video_steps": study_runs.video_run(s, "iid", 0.0).config.steps,
    "paper_alphas": {"mixed": s.strategy_alphas[0], "progressive": s.strategy_alphas[1]},
    "curves": curves[metric],
    "temporal": {name: curves[name] for name in temporal},
    "scratch": scratch[metric],
    "scratch_temporal": {name: scratch[name] for name in temporal},
    "by_metric": {
        name: {
            "curves": curves[name],
            "scratch": scratch[name],
            "lower_is_better": experiments.LOWER_IS_BETTER[name],
        }
        for name in verdict_metrics
    },
    **yardsticks,
    "best_alpha": best,
    "selection_metric": experiments.SELECTION_METRIC,
    "chosen_on_seeds": study_plans.choice_seeds(scores, s),
    "all_metrics": {f"{kind} {results.alpha_key(a)}": runs for (kind, a), runs in scores.items()},
}
# %% [markdown]
# **Confirm, don't just select.** The best α above was chosen on these seeds, so its verdicts are exploratory.
# A preset with `confirm_seeds` re-runs the chosen α, the paper's α and both ends (α = 0, α = ∞) on fresh
# seeds that took no part in choosing, and SUMMARY marks those verdicts confirmatory.

# %%
if s.confirm_seeds:
    chosen = study_plans.best_alphas(scores, s)
    confirm_runs = study_plans.confirmation_runs(s, chosen)
    confirm_scores = experiments.train_and_evaluate(confirm_runs, s, cache_dir, allow_missing=True)
    payload["confirmation"] = {
        **study_plans.confirmation_record(
            confirm_scores, chosen, s, chosen_on=study_plans.choice_seeds(scores, s)
        ),
        "not_run": experiments.unrecorded_runs(confirm_runs, s),
    }
results.save_results(out, "04_alpha_sweep", s.name, payload)
display(Markdown(render_section("04_alpha_sweep", payload)))
