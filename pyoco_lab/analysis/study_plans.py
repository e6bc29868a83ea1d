"""What each figure preset runs: the study plans of Fig. 7 (alpha sweep and its confirmation), Table 5
(strategies), Fig. 8 (model size), Fig. 6 (samples) and the finetune-length curve, as lists of
:class:`~pyoco_lab.analysis.study_runs.RunSpec`; :func:`run_study` trains and evaluates a preset's runs in
parts.

The presets' knobs live in :mod:`pyoco_lab.analysis.presets`; the runs are trained and cached by
:mod:`pyoco_lab.analysis.study_runs` and evaluated by :mod:`pyoco_lab.analysis.experiments`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pyoco_lab import devices
from pyoco_lab.analysis import results
from pyoco_lab.analysis.experiments import (
    LOWER_IS_BETTER,
    SELECTION_METRIC,
    VERDICT_METRICS,
    recorded_evaluation,
    run_evaluation,
    summarise,
    with_motion_ratio,
)
from pyoco_lab.analysis.presets import INF, Settings
from pyoco_lab.analysis.study_runs import (
    RunSpec,
    ensure_run,
    image_source,
    video_run,
)
from pyoco_lab.progress import tqdm
from pyoco_lab.training import (
    compute,
    config_cli_args,
    precision,
    pretrained,
)
from pyoco_lab.training.checkpoints import (
    read_history,
)


def alpha_sweep_runs(s: Settings) -> dict[str, dict[float, list[RunSpec]]]:
    """Fig. 7: {kind: {alpha: [one run per seed]}} plus {"scratch": {0: [...]}} (i.i.d., from scratch)."""
    plan: dict[str, dict[float, list[RunSpec]]] = {
        kind: {a: [video_run(s, kind, a, seed=seed) for seed in s.seeds] for a in s.alphas}
        for kind in s.kinds
    }
    plan["scratch"] = {0.0: [video_run(s, "iid", 0.0, finetune=False, seed=seed) for seed in s.seeds]}
    return plan


def choice_seeds(scores: Mapping[tuple[str, float], Sequence[Mapping]], s: Settings) -> list[int]:
    """The seeds Fig. 7's choice is made on: those of ``s.seeds`` that every condition of the sweep holds
    (all of them, unless a records-only rendering left runs out: then a mean over different seeds would
    favour whichever condition lacks a hard seed). Rows without a ``seed`` count as ``s.seeds`` in order."""
    common = list(s.seeds)
    for kind in s.kinds:
        for alpha in s.alphas:
            rows = scores[(kind, float(alpha))]
            held = [int(row.get("seed", seed)) for row, seed in zip(rows, s.seeds, strict=False)]
            common = [seed for seed in common if seed in held]
    return common


def best_alphas(scores: Mapping[tuple[str, float], Sequence[Mapping]], s: Settings) -> dict[str, float]:
    """Fig. 7's choice, per prior kind: the alpha of ``s.alphas`` with the best mean ``SELECTION_METRIC``
    over its rows on :func:`choice_seeds` (``scores``: ``train_and_evaluate`` of the sweep's groups,
    {(kind, alpha): [row per seed]})."""
    sign = 1 if LOWER_IS_BETTER[SELECTION_METRIC] else -1
    seeds = choice_seeds(scores, s)
    if not seeds:
        raise ValueError(
            f"no seed of {list(s.seeds)} holds every condition of the sweep: nothing to choose on"
        )

    def mean(kind: str, alpha: float) -> float:
        rows = scores[(kind, float(alpha))]
        held = [row for row, seed in zip(rows, s.seeds, strict=False) if int(row.get("seed", seed)) in seeds]
        return sign * sum(float(row[SELECTION_METRIC]) for row in held) / len(held)

    return {kind: min(s.alphas, key=lambda a, k=kind: mean(k, a)) for kind in s.kinds}


def confirmation_runs(
    s: Settings, best: Mapping[str, float] | None
) -> dict[tuple[str, float], list[RunSpec]]:
    """The runs that test the sweep's choice on fresh seeds (``s.confirm_seeds``): alpha = 0 (i.i.d.), the
    paper's alpha per prior kind (``s.strategy_alphas``, the progressive one first: the paper's headline),
    alpha = inf, and per kind its best alpha (``best``, chosen on ``s.seeds``; None while the sweep is
    incomplete: then only the runs no choice decides); {(kind, alpha): [run per confirm seed]}, shared runs
    once, in that order -- the order a study short of compute runs them, i.i.d. and the paper's progressive
    alpha first, so that the first claim complete is the paper's (Table 5)."""
    paper = dict(zip(("mixed", "progressive"), s.strategy_alphas, strict=True))
    wanted = [("iid", 0.0)] + [(kind, paper[kind]) for kind in sorted(s.kinds, reverse=True)]
    wanted += [("mixed", INF)] + [(kind, best[kind]) for kind in s.kinds if best is not None]
    plan: dict[tuple[str, float], list[RunSpec]] = {}
    for kind, alpha in wanted:
        runs = [video_run(s, kind, alpha, seed=seed) for seed in s.confirm_seeds]
        config = runs[0].config if runs else None
        if config is not None:
            plan.setdefault((config.noise, float(config.alpha)), runs)
    return plan


def confirmation_record(
    scores: Mapping[tuple[str, float], Sequence[Mapping]],
    best: Mapping[str, float],
    s: Settings,
    *,
    chosen_on: Sequence[int] | None = None,
) -> dict[str, Any]:
    """What SUMMARY needs to state the confirmatory verdicts: the conditions of :func:`confirmation_runs`
    summarised on the fresh seeds (``summarise``, values paired by seed; a condition without any recorded
    run is absent, and SUMMARY says its claims were not run) and the claims to test, each (kind, claim,
    better condition, worse condition); the choice itself was made on ``chosen_on`` (default ``s.seeds``)."""

    def name(kind: str, alpha: float) -> str:
        spec = video_run(s, kind, alpha)
        if math.isinf(spec.config.alpha):  # both priors: the same noise at alpha = inf
            return "α=∞ (one run for both priors)"
        return f"{spec.config.noise} α={results.alpha_key(spec.config.alpha)}"

    paper = dict(zip(("mixed", "progressive"), s.strategy_alphas, strict=True))
    claims = []
    for kind in s.kinds:
        chosen = name(kind, best[kind])
        for end, end_text in ((0.0, "α = 0 (i.i.d.)"), (INF, "α = ∞")):
            if name(kind, end) != chosen:
                claims.append(
                    [
                        kind,
                        f"the best α ({results.alpha_key(best[kind])}) beats {end_text}",
                        chosen,
                        name(kind, end),
                    ]
                )
        if name(kind, paper[kind]) != name("iid", 0.0):
            claims.append(
                [
                    kind,
                    f"the paper's α ({results.alpha_key(paper[kind])}) beats i.i.d. (α = 0)",
                    name(kind, paper[kind]),
                    name("iid", 0.0),
                ]
            )
    measures = (*VERDICT_METRICS, "motion-ratio")
    return {
        "chosen_on_seeds": list(s.seeds if chosen_on is None else chosen_on),
        "seeds": list(s.confirm_seeds),
        "selection_metric": SELECTION_METRIC,
        "best_alpha": {kind: results.alpha_key(a) for kind, a in best.items()},
        "conditions": {
            name(kind, alpha): {m: summarise(rows, m) for m in measures if m in rows[0]}
            for (kind, alpha), rows in scores.items()
            if rows
        },
        "claims": claims,
    }


def recorded_best_alphas(s: Settings) -> dict[str, float] | None:
    """:func:`best_alphas` from the committed records of the sweep on ``s.seeds``; None until all exist."""
    scores: dict[tuple[str, float], list[dict]] = {}
    for kind, per_alpha in alpha_sweep_runs(s).items():
        if kind == "scratch":
            continue
        for alpha, runs in per_alpha.items():
            rows = [recorded_evaluation(spec, s) for spec in runs]
            if any(row is None for row in rows):
                return None
            scores[(kind, alpha)] = [row["generated"] for row in rows]
    return best_alphas(scores, s)


def strategy_runs(s: Settings, *, model: str | None = None) -> dict[str, list[RunSpec]]:
    """Table 5: from scratch (and at equal compute, ``s.scratch_equal_compute``), finetune i.i.d., + mixed,
    + progressive; one run per seed of ``s.seeds``."""
    mixed_alpha, progressive_alpha = s.strategy_alphas
    equal_compute = {"scratch-equal-compute": equal_compute_scratch_runs(s)} if model is None else {}
    return {
        "scratch": [video_run(s, "iid", 0.0, finetune=False, model=model, seed=seed) for seed in s.seeds],
        **{k: v for k, v in equal_compute.items() if v},
        "finetune": [video_run(s, "iid", 0.0, model=model, seed=seed) for seed in s.seeds],
        "mixed": [video_run(s, "mixed", mixed_alpha, model=model, seed=seed) for seed in s.seeds],
        "progressive": [
            video_run(s, "progressive", progressive_alpha, model=model, seed=seed) for seed in s.seeds
        ],
    }


def model_size_runs(s: Settings) -> dict[str, dict[str, list[RunSpec]]]:
    """Fig. 8: {model: {"scratch"|"mixed"|"progressive": [run per seed]}} at the preset's model sizes."""
    plan = {}
    for model in s.size_models or (s.model,):
        runs = {k: v for k, v in strategy_runs(s, model=model).items() if k != "finetune"}
        plan[runs["scratch"][0].config.model] = runs
    return plan


def curve_runs(s: Settings) -> dict[tuple[str, float], list[RunSpec]]:
    """The finetune-length curve: {(kind, alpha): [run per seed]} of ``s.curve_priors`` (Fig. 7's runs, or
    their longer versions with ``s.curve_video_steps``)."""
    return {
        (kind, float(alpha)): [
            video_run(s, kind, alpha, seed=seed, steps=s.curve_video_steps) for seed in s.seeds
        ]
        for kind, alpha in s.curve_priors
    }


def equal_compute_scratch_runs(s: Settings) -> list[RunSpec]:
    """From scratch at the finetune's total compute, one run per seed (``s.scratch_equal_compute``): the
    finetune's ``video_steps`` plus the image model's steps x batch in video-step FLOPs; it keeps every
    checkpoint, so its step-``video_steps`` one is the ordinary from-scratch run's weights."""
    if not s.scratch_equal_compute:
        return []
    video = video_run(s, "iid", 0.0, finetune=False).config
    source = image_source(s)
    if isinstance(source, RunSpec):
        image, image_steps = source.config, source.config.steps
    else:
        shipped = pretrained.get(source)
        image, image_steps = shipped.train_config, int(shipped.recipe["steps"])
    steps = video.steps + compute.equal_compute_steps(video, image, image_steps)
    runs = []
    for seed in s.seeds:
        spec = video_run(s, "iid", 0.0, finetune=False, seed=seed, steps=steps)
        keep = math.ceil(steps / spec.config.checkpoint_every) + 1
        runs.append(replace(spec, config=replace(spec.config, keep_checkpoints=keep)))
    return runs


def sample_runs(s: Settings) -> dict[float, RunSpec]:
    """Fig. 6: one finetuned run per alpha of ``sample_alphas``, ``sample_prior`` and ``sample_extra``."""
    return {
        float(a): video_run(s, s.sample_prior, a, seed=s.seeds[0], extra=s.sample_extra)
        for a in s.sample_alphas
    }


def study_plan(s: Settings, cache_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The preset's run graph as ready commands: per run (image runs first) its label, phase, folder in
    ``cache_dir``, what it starts from and the ``pyoco-lab train`` arguments that make exactly it.

    Run a line anywhere that shares ``cache_dir`` (``torchrun`` on a cluster, a laptop); ``reproduce`` then
    finds the finished folder by its config hash and only executes the notebooks.
    """
    plan = []
    for spec in all_runs(s):
        if isinstance(spec.init, RunSpec):
            init, start = ["--init", str(spec.init.folder(cache_dir))], str(spec.init.folder(cache_dir))
        elif spec.init:
            init, start = ["--init", str(spec.init)], str(spec.init)
        else:
            init, start = (["--from-scratch"] if spec.config.phase == "video" else []), None
        args = [
            "--preset",
            s.train_preset,
            *config_cli_args(spec.config),
            "--out",
            str(spec.folder(cache_dir)),
        ]
        plan.append(
            {
                "label": spec.label,
                "phase": spec.config.phase,
                "folder": str(spec.folder(cache_dir)),
                "init": start,
                "depends_on_image_run": isinstance(spec.init, RunSpec),
                "num_workers": spec.config.num_workers,
                "train_args": [*args, *init, "--resume", "--no-progress"],
            }
        )
    return sorted(plan, key=lambda run: run["phase"] != "image")  # image runs first


def evaluation_plan(s: Settings) -> list[tuple[RunSpec, list[tuple[int, int]]]]:
    """Every video run the figure notebooks evaluate, each with its [(step, clips)] evaluations: the
    finetune-length curve's runs first (seed by seed: the curve decides the sweep's length), then seed by
    seed from scratch at equal compute and the sweep's, Table 5's and Fig. 8's runs at their last step, and
    the confirmation runs on ``s.confirm_seeds`` (:func:`confirmation_runs`: those of the best alphas once the
    records hold the sweep on ``s.seeds``). What ``reproduce --runs`` works through."""
    plan: dict[str, tuple[RunSpec, list[tuple[int, int]]]] = {}

    def want(spec: RunSpec, step: int, clips: int) -> None:
        evaluations = plan.setdefault(spec.key(), (spec, []))[1]
        if (step, clips) not in evaluations:
            evaluations.append((step, clips))

    curve = curve_runs(s)
    for index in range(len(s.seeds)):
        for runs in curve.values():
            for step in s.curve_steps or (runs[index].config.steps,):
                want(runs[index], int(step), s.curve_samples)
    length = video_run(s, "iid", 0.0).config.steps
    # equal compute before the sweep: its step-`length` checkpoint is the short scratch run (a prefix)
    rest = [(spec, (length, spec.config.steps)) for spec in equal_compute_scratch_runs(s)]
    finals = [
        spec for per_alpha in alpha_sweep_runs(s).values() for runs in per_alpha.values() for spec in runs
    ]
    finals += [spec for runs in strategy_runs(s).values() for spec in runs]
    finals += [
        spec for per_model in model_size_runs(s).values() for runs in per_model.values() for spec in runs
    ]
    finals += list(sample_runs(s).values())  # Fig. 6's, when its recipe is not the sweep's (sample_extra)
    rest += [(spec, (spec.config.steps,)) for spec in finals]
    # seed by seed (a stable sort): the first seed's runs -- the shipped alpha zoo's -- land first, and a
    # study cut short holds whole seeds rather than every seed of a few conditions; within a seed, Fig. 6's
    # sample runs first (the committed videos, and with the curve's runs most of the zoo)
    order = {seed: index for index, seed in enumerate(s.seeds)}
    samples = {spec.key() for spec in sample_runs(s).values()}

    def position(item: tuple[RunSpec, tuple[int, ...]]) -> tuple[int, bool]:
        return order.get(item[0].config.seed, len(order)), item[0].key() not in samples

    for spec, steps in sorted(rest, key=position):
        for step in steps:
            want(spec, step, s.eval_samples)
    # the confirmation: the best alphas' runs (chosen on s.seeds) join once the records hold the sweep. The
    # first claim's two conditions (i.i.d. vs the paper's progressive alpha, Table 5) go seed by seed, so a
    # study cut short holds seed-paired runs of both rather than every seed of one
    if s.confirm_seeds and s.records_dir:
        confirm = list(confirmation_runs(s, recorded_best_alphas(s)).values())
        first_claim = [spec for pair in zip(*confirm[:2], strict=True) for spec in pair]
        for spec in first_claim + [spec for runs in confirm[2:] for spec in runs]:
            want(spec, spec.config.steps, s.eval_samples)
    return list(plan.values())


EMULATED_BF16_NOTE = "left for a machine with native bf16 (this CPU would emulate it)"


def run_study(
    s: Settings, cache_dir: str | os.PathLike, *, hours: float | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train and evaluate :func:`evaluation_plan`'s runs one at a time, each evaluation into the committed
    records (``s.records_dir``) as it lands; runs the records already hold are skipped.

    With ``hours``, no run starts that would not end within that budget, estimated from the seconds per
    step and per clip of the runs finished here so far (the first run always starts): a part of a long
    study ends on its own, between runs. A run pinned to bf16 is left for another machine where this one
    would emulate bf16 (a CPU without native bf16: an order of magnitude slower, training.precision), and
    said so once. Returns what was done, skipped and left.
    """
    if not s.records_dir:
        raise ValueError(
            "run_study writes committed records: set records_dir (or a preset with keep_records)"
        )
    start = time.perf_counter()
    done, skipped, left = [], [], []
    per_step = per_clip = None
    for spec, evaluations in tqdm(_growing_plan(s), desc="study", unit="run", disable=not progress):
        if all(recorded_evaluation(spec, s, step=step, num_samples=clips) for step, clips in evaluations):
            skipped.append(spec.label)
            continue
        if precision.emulated_bf16(spec.config.precision, devices.resolve_device(spec.config.device)):
            if not any(label.endswith(EMULATED_BF16_NOTE) for label in left):
                slowdown = precision.EMULATED_BF16_SLOWDOWN
                tqdm.write(
                    f"{spec.label} and every other bf16 run: {EMULATED_BF16_NOTE} ({slowdown})",
                    file=sys.stderr,
                )
            left.append(f"{spec.label}: {EMULATED_BF16_NOTE}")
            continue
        elapsed = time.perf_counter() - start
        if hours is not None and per_step is not None:
            estimate = per_step * spec.config.steps + per_clip * sum(c for _, c in evaluations)
            if elapsed + estimate > hours * 3600:
                left.append(spec.label)
                continue
        began = time.perf_counter()
        run_dir = ensure_run(spec, cache_dir, progress=progress)
        trained = time.perf_counter()
        for step, clips in evaluations:
            run_evaluation(spec, s, cache_dir, step=step, num_samples=clips, progress=progress)
        ended = time.perf_counter()
        last_part = (read_history(run_dir) or [{}])[-1]
        steps_here = int(last_part.get("to_step", 0)) - int(last_part.get("from_step", 0))
        if trained - began > 1 and steps_here > 0:  # trained here (maybe continued): its pace per step
            per_step = (trained - began) / steps_here
        per_clip = (ended - trained) / max(1, sum(c for _, c in evaluations))
        done.append({"label": spec.label, "seconds": round(ended - began, 1)})
    return {"done": done, "skipped": skipped, "left": left, "seconds": round(time.perf_counter() - start, 1)}


def _growing_plan(s: Settings):
    """:func:`evaluation_plan`'s runs, planned again after the last one: runs that only become known once
    others are recorded (the confirmation runs) join the same part."""
    seen: set[str] = set()
    while True:
        pending = [(spec, evaluations) for spec, evaluations in evaluation_plan(s) if spec.key() not in seen]
        if not pending:
            return
        for spec, evaluations in pending:
            seen.add(spec.key())
            yield spec, evaluations


def all_runs(s: Settings) -> list[RunSpec]:
    """Every distinct run the seven notebooks need (image models included), in training order."""
    specs: list[RunSpec] = []
    for per_alpha in alpha_sweep_runs(s).values():
        for runs in per_alpha.values():
            specs.extend(runs)
    for runs in strategy_runs(s).values():
        specs.extend(runs)
    for per_model in model_size_runs(s).values():
        for runs in per_model.values():
            specs.extend(runs)
    for runs in curve_runs(s).values():
        specs.extend(runs)
    specs.extend(sample_runs(s).values())
    specs.extend(equal_compute_scratch_runs(s))
    unique: dict[str, RunSpec] = {}
    for spec in specs:
        if isinstance(spec.init, RunSpec):
            unique.setdefault(spec.init.key(), spec.init)
        unique.setdefault(spec.key(), spec)
    return list(unique.values())


def finetune_curve(
    s: Settings, cache_dir: str | os.PathLike, *, progress: bool = True
) -> dict[tuple[str, float], dict[int, list[dict]]]:
    """{(kind, alpha): {step: [evaluation row per seed]}} of :func:`curve_runs` at ``s.curve_steps``.

    Each point evaluates that step's checkpoint (``curve_samples`` clips, the preset's sampler); its row
    also holds ``motion-ratio`` (motion energy over the same evaluation's real clips'). Runs are trained
    (or found) first; a step the run did not keep raises, naming the checkpoint settings to change.
    """
    plan = curve_runs(s)
    total = sum(len(runs) for runs in plan.values())
    bar = tqdm(total=total, desc="finetune curve", unit="run", disable=not progress)
    curve: dict[tuple[str, float], dict[int, list[dict]]] = {}
    for condition, runs in plan.items():
        curve[condition] = {}
        for spec in runs:
            bar.set_postfix_str(spec.label)
            for step in s.curve_steps or (spec.config.steps,):
                result = run_evaluation(spec, s, cache_dir, step=step, num_samples=s.curve_samples)
                row = with_motion_ratio(result["generated"], result["real-test"])
                curve[condition].setdefault(int(step), []).append(row)
            bar.update()
    bar.close()
    return curve
