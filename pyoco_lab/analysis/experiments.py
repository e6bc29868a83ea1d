"""The reproduction plan as data: what each preset runs, and a cache so nothing is trained twice.

The presets' knobs live in :mod:`pyoco_lab.analysis.presets` (:class:`Settings`, ``settings(preset,
...)``); this module turns them into runs, trains what is missing and evaluates what is asked.

Training runs are described by :class:`RunSpec` (a :class:`pyoco_lab.training.TrainConfig` plus the
image run it is finetuned from, if any). Its folder name is derived from a hash of the config,
so the alpha sweep, the strategies table and the model-size study share identical runs through
``cache_dir`` -- ``pyoco_lab.training.train`` returns at once when the folder holds a finished run.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pyoco_lab import devices, evaluation, provenance, stats
from pyoco_lab.analysis import results, run_records
from pyoco_lab.analysis.presets import INF, Settings
from pyoco_lab.evaluation import EvaluationRequest, evaluate_controls, evaluate_image_run
from pyoco_lab.fileio import json_digest, read_json
from pyoco_lab.metrics import yardsticks
from pyoco_lab.noise import NoisePrior, alpha_name
from pyoco_lab.progress import tqdm
from pyoco_lab.sampling import sample_videos
from pyoco_lab.training import (
    TrainConfig,
    compute,
    config_cli_args,
    load_denoiser,
    precision,
    preset_config,
    pretrained,
    resolve_checkpoint,
    train,
)
from pyoco_lab.training.checkpoints import (
    checkpoint_folders,
    checkpoint_step,
    load_config,
    read_history,
    verify_checkpoint,
)
from pyoco_lab.training.config import KEY_NEUTRAL_VALUES, RESUMABLE_CHANGES

# ----------------------------------------------------------------------------------------------
# Training runs and the shared cache.


@dataclass(frozen=True)
class RunSpec:
    """One training run: its config and, for a finetune, the image run it starts from."""

    label: str
    config: TrainConfig
    init: RunSpec | str | None = None  # an image run to train first, or a shipped "pretrained:NAME"

    def key(self) -> str:
        """A short hash of everything that changes the result (config and init chain)."""
        if isinstance(self.init, RunSpec):
            init = self.init.key()
        else:  # a shipped model enters with its hash, so re-exported weights give new run folders
            init = pretrained.init_record(self.init) if self.init else None
        payload = {"config": _config_dict(self.config), "init": init}
        return json_digest(payload, 10)

    def folder(self, cache_dir: str | os.PathLike) -> Path:
        return Path(cache_dir) / "runs" / f"{self.label}-{self.key()}"

    def trajectory_key(self) -> str:
        """A hash of what decides the weights at every step: :meth:`key` without the fields that only say
        how far to go, what to log or how to sample along the way (``RESUMABLE_CHANGES``). Runs that differ
        only in ``steps`` share it, and the shorter one's weights are the longer one's at that step (with a
        learning-rate decay the length moves the decay, so ``steps`` then stays in)."""
        if isinstance(self.init, RunSpec):
            init = self.init.trajectory_key()
        else:
            init = pretrained.init_record(self.init) if self.init else None
        ignored = RESUMABLE_CHANGES - ({"steps", "decay_steps"} if self.config.decay_steps else set())
        config = {k: v for k, v in _config_dict(self.config).items() if k not in ignored}
        payload = {"trajectory": config, "init": init}
        return json_digest(payload, 10)


def _config_dict(config) -> dict:
    values = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in KEY_NEUTRAL_VALUES or v != KEY_NEUTRAL_VALUES[k]
    }
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def image_run(s: Settings, *, model: str | None = None, seed: int = 0) -> RunSpec:
    """The image model pre-trained on frames (i.i.d. noise), shared by every finetune of that size."""
    overrides = s.train_overrides("image")
    if model is not None:
        overrides["model"] = model
    config = preset_config(s.train_preset, "image", seed=seed, **overrides)
    return RunSpec(f"image-{config.model}", config)


def video_run(
    s: Settings,
    kind: str,
    alpha: float,
    *,
    finetune: bool = True,
    model: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunSpec:
    """A video run with prior (kind, alpha), finetuned from the image model or from scratch.

    alpha = 0 is i.i.d. noise whatever the kind, and alpha = inf is the same noise in every frame
    for both mixed and progressive; those runs are normalised to one config so they are shared.
    ``steps`` replaces the preset's ``video_steps`` (the finetune-length curve's longer runs); ``extra``
    overrides any other TrainConfig field, last (Fig. 6's ``sample_extra``).
    """
    alpha = float(alpha)
    if alpha == 0.0 or kind == "iid":
        kind, alpha = "iid", 0.0
    elif math.isinf(alpha):
        kind = "mixed"
    overrides = s.train_overrides("video")
    if seed in s.confirm_seeds:
        overrides.update(s.confirm_extra)
    if model is not None:
        overrides["model"] = model
    if steps is not None:
        overrides["steps"] = steps
    overrides.update(extra or {})
    config = preset_config(s.train_preset, "video", noise=kind, alpha=alpha, seed=seed, **overrides)
    origin = "ft" if finetune else "scratch"
    label = f"video-{config.model}-{origin}-{kind}-{alpha_name(alpha)}-s{seed}"
    return RunSpec(label, config, image_source(s, model=model) if finetune else None)


def image_source(s: Settings, *, model: str | None = None) -> RunSpec | str:
    """What finetunes (and the inversion study) start from: the preset's shipped image model when it
    fits ``model``, else the image run pre-trained in the cache."""
    spec = image_run(s, model=model)
    if s.image_model and not s.pretrain_image:
        shipped = pretrained.get(s.image_model).train_config
        if (shipped.model, shipped.resolution) == (spec.config.model, spec.config.resolution):
            return s.image_model
    return spec


def ensure_image_model(s: Settings, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path | str:
    """The image model of the preset, ready to load: ``pretrained:NAME``, or a trained run folder."""
    source = image_source(s)
    return source if isinstance(source, str) else ensure_run(source, cache_dir, progress=progress)


def ensure_run(spec: RunSpec, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Train ``spec`` (and its image model first) unless ``cache_dir`` already holds it; return its folder.

    A run killed part-way resumes from its newest intact checkpoint: the folder is named by a hash of
    the config and init chain, so whatever is in it can only be this run.
    """
    init = (
        ensure_run(spec.init, cache_dir, progress=progress) if isinstance(spec.init, RunSpec) else spec.init
    )
    folder = spec.folder(cache_dir)
    if not folder.exists():
        continue_from_prefix(spec, cache_dir)
    return Path(train(spec.config, folder, init=init, resume=True, progress=progress))


def continue_from_prefix(spec: RunSpec, cache_dir: str | os.PathLike) -> Path | None:
    """Start ``spec``'s folder from a run of the same trajectory already in the cache (same label, init chain
    and trajectory key, another length: a curve extended from 2,000 to 3,000 steps), so training resumes at
    its newest intact checkpoint within ``spec``'s steps instead of at step 0 -- bitwise the same run.

    The other run's config, history, log and its intact checkpoints up to ``spec``'s steps are *copied*
    (the earlier ones too: a curve evaluates steps its records may not hold yet) into a staging folder
    renamed into place, so a crash leaves nothing half-made; its folder is left as it is. Returns the
    checkpoint continued from, or None when the cache holds no such run.
    """
    folder = spec.folder(cache_dir)
    found: list[tuple[Path, list[Path]]] = []
    for other in sorted(folder.parent.glob(f"{spec.label}-*")):
        try:
            candidate = RunSpec(spec.label, load_config(other), spec.init)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if other == folder or candidate.folder(cache_dir) != other:  # the folder is not that run's own
            continue
        if candidate.trajectory_key() != spec.trajectory_key():
            continue
        within = [c for c in checkpoint_folders(other) if checkpoint_step(c) <= spec.config.steps]
        intact = [c for c in within if _intact(c)]  # newest first
        if intact:
            found.append((other, intact))
    if not found:
        return None
    # the run that got furthest along this trajectory (a 2,000-step curve run before a 1,000-step sweep run)
    other, intact = max(found, key=lambda item: checkpoint_step(item[1][0]))
    staging = Path(tempfile.mkdtemp(prefix=f".prefix-{spec.label}-", dir=folder.parent))
    for name in ("config.json", "history.jsonl", "log.csv"):
        if (other / name).is_file():
            shutil.copy2(other / name, staging / name)
    for checkpoint in intact:
        shutil.copytree(checkpoint, staging / "checkpoints" / checkpoint.name)
    os.replace(staging, folder)
    return intact[0]


def _intact(checkpoint: Path) -> bool:
    try:
        verify_checkpoint(checkpoint, full=True)
    except ValueError:
        return False
    return True


def run_weights(spec: RunSpec, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path | str:
    """What to load for run ``spec``'s weights: the shipped video model trained exactly so (the alpha zoo,
    ``pretrained:NAME``: same config, same shipped image model), else its run folder, trained if needed."""
    if not isinstance(spec.init, RunSpec):
        shipped = pretrained.shipped_run(spec.config, spec.init)
        if shipped is not None:
            return shipped
    return ensure_run(spec, cache_dir, progress=progress)


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


# ----------------------------------------------------------------------------------------------
# Evaluation, cached in each run's eval.json (pyoco_lab.evaluation writes it).

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
