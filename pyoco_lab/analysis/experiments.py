"""A study's evaluations: each run evaluated with its preset's sampler and real data, cached in the run's
``eval.json`` (:mod:`pyoco_lab.evaluation`) or read from the study's committed run records, and the
summaries the figure notebooks plot (seed means and intervals, motion-ratio, the metric controls).

The presets' knobs live in :mod:`pyoco_lab.analysis.presets`, the runs in
:mod:`pyoco_lab.analysis.study_runs`, what each preset runs in :mod:`pyoco_lab.analysis.study_plans`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyoco_lab import evaluation, provenance, stats
from pyoco_lab.analysis import run_records
from pyoco_lab.analysis.presets import Settings
from pyoco_lab.analysis.study_runs import (
    RunSpec,
    ensure_image_model,
    ensure_run,
    video_run,
)
from pyoco_lab.evaluation import EvaluationRequest, evaluate_controls, evaluate_image_run
from pyoco_lab.fileio import read_json
from pyoco_lab.metrics import yardsticks
from pyoco_lab.noise import NoisePrior
from pyoco_lab.progress import tqdm
from pyoco_lab.sampling import sample_videos
from pyoco_lab.training import (
    load_denoiser,
    pretrained,
    resolve_checkpoint,
)
from pyoco_lab.training.checkpoints import (
    load_config,
)

# The metric each figure ranks runs by, and the paper's metric it stands in for.
SWEEP_METRIC = "FVD-lab"  # Fig. 7 / Fig. 8 use FVD; the lab's FVD when I3D weights are absent
TABLE5_METRICS = {"IS-lab": "IS", "FVD-lab": "FVD", "FD-frame-lab": "FID"}  # ours -> paper's column
PAPER_METRICS = {"IS": "IS", "FVD": "FVD", "FID-frame": "FID"}  # when the paper's networks are present
# Verdicts cite content and motion side by side (issue #22). The content score is the primary verdict
# metric for "does the video look like anything": FVD-lab is carried by its motion stream, so a model with
# smooth motion and no content (from scratch) can win on it. The motion score is FVD-lab's motion half alone.
CONTENT_METRIC = "KID-app"
MOTION_METRIC = "FD-motion-lab"
VERDICT_METRICS = (CONTENT_METRIC, MOTION_METRIC, SWEEP_METRIC)  # in the order SUMMARY cites them
# The measure Fig. 7's best alpha is chosen by, before the confirmation seeds test it (issue #24). The
# content score, not FVD-lab: on the embedded data FVD-lab ranks a frozen video (alpha = inf, and the frozen
# control) above every model whose frames change wrongly, so choosing by it picks "moves least" (cpu-long's
# alpha = 5; at 32 px alpha = inf beat every seed-0 finetune), and it ranks real motion on pure noise above
# every model. Motion is not dropped: every confirmatory claim is judged on content and motion side by side.
SELECTION_METRIC = CONTENT_METRIC
# The clip measures the controls table shows (motion-ratio: descriptive, 1 = real motion, no ranking rule)
CLIP_MEASURES = ("KID-app", "C2ST-clip", "FD-motion-lab", "FVD-lab", "scene-held", "motion-ratio")
LOWER_IS_BETTER = {
    **yardsticks.LOWER_IS_BETTER,
    "FVD-lab": True,
    "FD-frame-lab": True,
    "IS-lab": False,
    "FVD": True,
    "FID-frame": True,
    "IS": False,
}


def evaluate(
    run_dir: str | os.PathLike,
    s: Settings,
    *,
    seed: int = 0,
    num_samples: int | None = None,
    progress: bool = True,
) -> dict:
    """``evaluate_run``'s result for a video run ({"generated": {...}, "real-test": {...}, ...}), cached.

    Samples with the preset's sampler (``s.sampler``: kind, steps and options) and compares with the preset's
    real clips (``s.reference_split``, ``s.reference_seed``). ``evaluate_run`` stores every evaluation in
    ``RUN/eval.json`` under its key (checkpoint, sampler and its options, sample count, seed, weights and
    protocol: ``evaluation.keys.evaluation_key``); with ``reuse=True`` an evaluation stored under the very
    same key is read back instead of sampling again. ``run_dir`` may be one checkpoint folder, and
    ``num_samples`` replaces ``s.eval_samples`` (the finetune-length curve's ``curve_samples``).
    """
    request = evaluation_request(s, run_dir, seed=seed, num_samples=num_samples)
    return evaluation.evaluate(request, progress=progress, reuse=True)


def evaluation_request(
    s: Settings, source: str | os.PathLike | None = None, *, seed: int = 0, num_samples: int | None = None
) -> EvaluationRequest:
    """This preset's evaluation of ``source`` (and of its committed records' keys, where there is none):
    the preset's sampler, real split and seed, ``num_samples`` or ``s.eval_samples`` clips."""
    return EvaluationRequest(
        source,
        num_samples or s.eval_samples,
        s.sampler.kind,
        s.sampler.steps,
        sampler_options=s.sampler.options(),
        reference_split=s.reference_split,
        reference_seed=s.reference_seed,
        seed=seed,
    )


class RunNotRecorded(LookupError):
    """A run the records-only rendering (``Settings.records_only``) needs has no committed record."""


def run_evaluation(
    spec: RunSpec,
    s: Settings,
    cache_dir: str | os.PathLike,
    *,
    step: int | None = None,
    num_samples: int | None = None,
    progress: bool = False,
) -> dict:
    """:func:`evaluate` of run ``spec`` at ``step`` (default: its last), training it first if needed.

    With ``s.records_dir`` a committed record of this very evaluation (:mod:`analysis.run_records`) answers
    without training or sampling, and a new evaluation is added to the run's record as soon as it is done.
    A step the run does not keep raises, naming the checkpoint settings to change. With ``s.records_only``
    an evaluation the records lack raises :class:`RunNotRecorded` instead of training.
    """
    step = int(step or spec.config.steps)
    found = recorded_evaluation(spec, s, step=step, num_samples=num_samples)
    if found is not None:
        return found
    if s.records_only:
        raise RunNotRecorded(
            f"{spec.label} (step {step}) has no committed record in {s.records_dir}: run "
            f"`pyoco-lab reproduce --preset {s.name} --runs` to make it, or render without --from-records"
        )
    run_dir = ensure_run(spec, cache_dir, progress=progress)
    checkpoint = run_dir / "checkpoints" / f"step-{step:07d}"
    if not checkpoint.is_dir():
        raise FileNotFoundError(
            f"{checkpoint} was not kept: the curve needs checkpoint_every dividing {step} and "
            f"keep_checkpoints covering every curve step (Settings.train_extra)"
        )
    result = evaluate(checkpoint, s, num_samples=num_samples, progress=progress)
    if s.records_dir:
        init = spec.init.folder("").name if isinstance(spec.init, RunSpec) else spec.init
        parts = _record_parts(spec, s, num_samples)
        run_records.add(s.records_dir, spec.label, spec.trajectory_key(), run_dir, init, parts, step, result)
    return result


def recorded_evaluation(
    spec: RunSpec, s: Settings, *, step: int | None = None, num_samples: int | None = None
) -> dict | None:
    """The committed record of :func:`run_evaluation`'s evaluation (``s.records_dir``), or None."""
    if not s.records_dir:
        return None
    step = int(step or spec.config.steps)
    parts = _record_parts(spec, s, num_samples)
    return run_records.find(s.records_dir, spec.label, spec.trajectory_key(), parts, step)


def measured_quality(record: str | os.PathLike, step: int, ema_sha256: str) -> dict[str, Any]:
    """What a shipped video model's registry entry says of it (the alpha zoo): the evaluation that a committed
    run record (``run_records``) holds of *exactly these weights* -- same ``step``, same EMA ``ema_sha256``
    -- as motion relative to real clips and the verdict metrics, each with its interval, and which record,
    N, sampler and seeds measured it. The most-clips evaluation when several match."""
    data = read_json(record, "run record")
    at_step = [e for e in data.get("evaluations", {}).values() if e.get("step") == int(step)]
    matches = [e for e in at_step if e.get("ema_sha256") == ema_sha256 and "generated" in e.get("result", {})]
    if not matches:
        other = (
            f" (it measured other weights there: sha256 {at_step[0].get('ema_sha256', '?')[:12]})"
            if at_step
            else ""
        )
        raise ValueError(
            f"{record} holds no evaluation of these weights (sha256 {ema_sha256[:12]}) at step {step}"
            f"{other}: give the record of the run that made them, evaluated at that step "
            "(`pyoco-lab reproduce --preset NAME --runs`)"
        )
    result = max(matches, key=lambda e: e["result"]["settings"]["num_samples"])["result"]
    row, run = with_motion_ratio(result["generated"], result["real-test"]), result["settings"]
    quality = {
        f"{metric}{' (1 = real motion)' if metric == 'motion-ratio' else ''}": (
            f"{row[metric]:.3g} [{row[metric + '-ci'][0]:.3g}, {row[metric + '-ci'][1]:.3g}]"
        )
        for metric in ("motion-ratio", *VERDICT_METRICS, "C2ST-clip")
        if metric in row and row.get(metric + "-ci") is not None
    }
    quality["measured_by"] = (
        f"{provenance.repo_relative(record)} (training seed {data['config']['seed']}, step {int(step)}, "
        f"N = {run['num_samples']} clips, {run['sampler']} {run['num_steps']} steps, sampling seed "
        f"{run['seed']}, against {run['num_real_test']} held-out real clips; one evaluation's bootstrap "
        "interval)"
    )
    return quality


def _record_parts(spec: RunSpec, s: Settings, num_samples: int | None) -> dict:
    """The key's contents of the run's evaluation, built from its config alone (no run folder needed)."""
    return evaluation_request(s, num_samples=num_samples).parts(spec.config, {})


def clip_length(s: Settings) -> int:
    """Frames per clip of the preset's video runs (what the real clips and the lab classifier use)."""
    return video_run(s, "iid", 0.0).config.num_frames


def evaluate_image_model(
    s: Settings, cache_dir: str | os.PathLike, *, seed: int = 0, num_images: int | None = None, progress=True
) -> dict:
    """Table 5's "Image Diffusion" row, measured: ``evaluate_image_run`` of the preset's image model, cached.

    The image model every finetune starts from (``ensure_image_model``: trained in ``cache_dir`` or shipped
    as ``pretrained:NAME``, whose eval.json then lives in ``cache_dir/image-models/NAME``) samples
    ``num_images`` images (default: ``eval_samples`` x the clip length, i.e. as many frames as a video row's
    frame metrics see, so both carry the same small-N bias) with i.i.d. noise and the preset's sampler;
    FD-frame-lab (embedded data) and FID-frame (with Inception weights) compare them with the real frames of
    ``s.reference_split``, as the video rows do.
    """
    source = ensure_image_model(s, cache_dir, progress=progress)
    frames = clip_length(s)
    store = None
    if pretrained.is_pretrained(source):
        store = Path(cache_dir) / "image-models" / str(source)[len(pretrained.PREFIX) :]
        store.mkdir(parents=True, exist_ok=True)
    return evaluate_image_run(
        source,
        num_images or s.eval_samples * frames,
        s.sampler.kind,
        s.sampler.steps,
        sampler_options=s.sampler.options(),
        num_frames=frames,
        reference_split=s.reference_split,
        reference_seed=s.reference_seed,
        seed=seed,
        store_dir=store,
        progress=progress,
        reuse=True,
    )


def image_model_scores(s: Settings, cache_dir: str | os.PathLike, *, progress: bool = True) -> dict:
    """The image model's frame metrics ({"FD-frame-lab": ..., "FID-frame": ...}), like a Table 5 row.

    The "generated" row of :func:`evaluate_image_model`: the same shape as :func:`train_and_evaluate`'s rows,
    without the clip metrics (IS, FVD and their lab versions do not exist for an image model).
    """
    return evaluate_image_model(s, cache_dir, progress=progress)["generated"]


def shown_prior(source: str | os.PathLike, s: Settings) -> tuple[NoisePrior, str]:
    """The prior Fig. 6 samples ``source`` with, and a caption saying which: a shipped model's recorded
    sampling prior (issue #38: the α a model keeps scenes best with need not be the α it was trained with)
    unless ``s.sample_with`` is "training" or it records none, else the prior it was trained with."""
    if s.sample_with not in ("recorded", "training"):
        raise ValueError(f"sample_with={s.sample_with!r}: pass 'recorded' or 'training'")
    if pretrained.is_pretrained(str(source)):
        trained = pretrained.get(str(source)).train_config.prior
    else:
        trained = load_config(resolve_checkpoint(source)[1]).prior
    recorded = pretrained.recorded_sampling_prior(str(source)) if s.sample_with == "recorded" else None
    if recorded is not None:
        return recorded, f"trained {trained.label}; sampled {recorded.label} (its recorded prior)"
    return trained, f"trained and sampled {trained.label}"


def draw_samples(
    run_dir: str | os.PathLike,
    s: Settings,
    num_samples: int,
    *,
    seed: int = 0,
    prior: NoisePrior | None = None,
):
    """``num_samples`` videos (N, F, C, H, W) of a run with the preset's sampler (Fig. 6), under ``prior``
    (None: the prior it was trained with; :func:`shown_prior` chooses Fig. 6's)."""
    denoiser, config = load_denoiser(run_dir)
    shape = (config.num_frames, 3, config.resolution, config.resolution)
    return sample_videos(
        denoiser,
        prior or config.prior,
        shape,
        num_samples,
        sampler=s.sampler.kind,
        num_steps=s.sampler.steps,
        sampler_options=s.sampler.options(),
        seed=seed,
        progress=False,
    )


def train_and_evaluate(
    groups: Mapping[Any, Sequence[RunSpec]],
    s: Settings,
    cache_dir: str | os.PathLike,
    *,
    progress: bool = True,
    allow_missing: bool = False,
) -> dict[Any, list[dict]]:
    """Train (or find) and evaluate every run of ``groups``; {key: [generated-sample metrics per run]}.

    Each row is the evaluation's "generated" row plus ``motion-ratio`` (its motion energy over the real
    clips' of the same evaluation) and the run's ``seed`` (so conditions are compared paired by seed).
    With ``s.records_only`` and ``allow_missing``, a run without a committed record is left out of its
    group (:func:`unrecorded_runs` names them); without ``allow_missing`` it raises RunNotRecorded.

    One progress bar over all runs; a run shared between groups is trained and evaluated once.
    """
    total = sum(len(runs) for runs in groups.values())
    # A records-only rendering trains nothing: its bar says so.
    desc = "read records" if s.records_only else "train + evaluate"
    bar = tqdm(total=total, desc=desc, unit="run", disable=not progress)
    scores: dict[Any, list[dict]] = {}
    for key, runs in groups.items():
        scores[key] = []
        for spec in runs:
            bar.set_postfix_str(spec.label)
            bar.update()
            if allow_missing and s.records_only and recorded_evaluation(spec, s) is None:
                continue
            result = run_evaluation(spec, s, cache_dir)
            row = with_motion_ratio(result["generated"], result["real-test"])
            scores[key].append({**row, "seed": spec.config.seed})
    bar.close()
    return scores


def present_measures(rows: Iterable[Mapping], measures: Sequence[str]) -> tuple[str, ...]:
    """The ``measures`` every row holds, in order: an evaluation recorded before a measure existed (e.g.
    ``scene-held``, issue #38, in a committed cpu-32 record) lacks it; a figure shows what all rows have."""
    rows = list(rows)
    return tuple(m for m in measures if all(m in row for row in rows))


def summarise(rows: Sequence[Mapping], metric: str) -> dict:
    """One condition's ``metric`` over its seeds: ``stats.condition_interval`` record + the per-seed values.

    Several seeds: a t interval over them; one seed: that evaluation's bootstrap interval (``<metric>-ci``)
    when it has one. The values stay in the record, in seed order, with their ``seeds`` when the rows name
    them, so conditions can be compared paired on the seeds both hold (``stats.compare_records``).
    """
    values = [float(row[metric]) for row in rows]
    single_ci = rows[0].get(f"{metric}-ci") if len(rows) == 1 else None
    interval = stats.condition_interval(values, single_ci)
    record = {**interval.record(), "values": values}
    if rows and all("seed" in row for row in rows):
        record["seeds"] = [int(row["seed"]) for row in rows]
    return record


def unrecorded_runs(groups: Mapping[Any, Sequence[RunSpec]], s: Settings) -> list[str]:
    """Labels of the runs of ``groups`` whose last-step evaluation has no committed record, once each, in
    order -- what a records-only rendering (``s.records_only``) leaves out; empty otherwise."""
    if not s.records_only:
        return []
    missing = [
        spec.label for runs in groups.values() for spec in runs if recorded_evaluation(spec, s) is None
    ]
    return list(dict.fromkeys(missing))


def motion_ratio(row: Mapping, real: Mapping) -> float:
    """Motion energy of a set relative to real clips' (1 = real motion; 0 frozen; >> 1 flicker)."""
    return float(row["motion-energy"]) / float(real["motion-energy"])


def with_motion_ratio(row: Mapping, real: Mapping) -> dict:
    """``row`` plus ``motion-ratio`` (and its interval, from ``motion-energy-ci``, real motion held fixed)."""
    out = {**row, "motion-ratio": motion_ratio(row, real)}
    if row.get("motion-energy-ci") is not None:
        out["motion-ratio-ci"] = [float(v) / float(real["motion-energy"]) for v in row["motion-energy-ci"]]
    return out


def metric_controls(
    s: Settings, cache_dir: str | os.PathLike, *, progress: bool = True
) -> dict[str, list[dict]]:
    """``evaluation.controls.evaluate_controls`` for this preset's clips: {control: [row per seed]}, cached.

    Same N (``eval_samples``) and reference as every generated evaluation of the preset, one subset of
    held-out clips per seed of ``s.seeds``; stored in ``cache_dir/controls.json`` (in ``s.records_dir`` when
    set).
    """
    config = video_run(s, "iid", 0.0).config
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return evaluate_controls(
        config,
        s.eval_samples,
        seeds=tuple(s.seeds),
        reference_split=s.reference_split,
        reference_seed=s.reference_seed,
        # with committed records, beside them: the controls cost minutes a new machine need not repeat
        store=Path(s.records_dir or cache_dir) / "controls.json",
        progress=progress,
    )


def summarise_controls(controls: Mapping[str, Sequence[Mapping]], metrics: Sequence[str]) -> dict[str, dict]:
    """{control: {metric: :func:`summarise` record}} of :func:`metric_controls`' rows (``motion-ratio``:
    each seed's control over that seed's real clips)."""
    table = {}
    for kind, rows in controls.items():
        rows = [with_motion_ratio(row, real) for row, real in zip(rows, controls["real"], strict=True)]
        table[kind] = {m: summarise(rows, m) for m in metrics if m in rows[0]}
    return table


def yardstick_record(controls: Mapping[str, Sequence[Mapping]]) -> dict[str, Any]:
    """What SUMMARY needs to judge a section's verdict metrics, for its ``results.json``.

    ``{"controls": {control: {measure: record}}, "yardsticks": {...}}``: the controls table of
    :data:`CLIP_MEASURES` (:func:`summarise_controls` of :func:`metric_controls`) and which measure is
    content / motion / the paper's combined score, which way each is better and which controls each must
    rank below real (``yardsticks.CLIP_CONTROL_TARGETS``): a results.json is judged by the rules it was made
    under.
    """
    table = summarise_controls(controls, CLIP_MEASURES)
    measured = [m for m in CLIP_MEASURES if m in table["real"]]
    return {
        "controls": table,
        "yardsticks": {
            "content": CONTENT_METRIC,
            "motion": MOTION_METRIC,
            "combined": SWEEP_METRIC,
            "lower_is_better": {m: LOWER_IS_BETTER[m] for m in measured if m in LOWER_IS_BETTER},
            "control_targets": {
                m: list(yardsticks.CLIP_CONTROL_TARGETS[m])
                for m in measured
                if m in yardsticks.CLIP_CONTROL_TARGETS
            },
        },
    }
