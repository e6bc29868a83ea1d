"""Sampling-time lever (#38): a video model sampled with another noise prior than it was trained with.

The noise correlation an image model needs for its frames to start alike is a property of that image model
(how it maps correlated noise to correlated frames), so the α a video model was finetuned with need not be
the best α to *sample* it with. No training is needed to find out: sample the same weights under several
priors and judge every set of clips with three measures side by side —

* **scene consistency** (``metrics.scene_consistency``): does a clip keep one scene (``scene-held``)?
* **motion** (``motion-ratio``): the clips' mean motion energy over real clips' (1 = real motion; the
  interval resamples the generated clips, the real clips held fixed);
* **content** (``KID-app`` and the other frame yardsticks of ``metrics.yardsticks``) against the training
  distribution (train half A).

A clip that cuts, a clip that stands still and a clip of the wrong content each fail one of them. The real
clips (train half B) are judged the same way, with the scene-consistency controls beside them
(:func:`control_rows`), so every number has its floor and its broken versions in the same table.

Every (model, prior, sampler, seed) evaluation is stored in a JSON file under a key of what decides it, as
soon as it is done: a sweep killed half-way resumes where it stopped (:func:`sampling_sweep`).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from pyoco_lab import media, noise, viz
from pyoco_lab.analysis.results import to_jsonable
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json
from pyoco_lab.metrics import appearance, controls, networks, scene_consistency, yardsticks
from pyoco_lab.metrics.temporal import motion_energy
from pyoco_lab.progress import tqdm
from pyoco_lab.reinit import Reinit
from pyoco_lab.sampling import sample_videos
from pyoco_lab.stats import bootstrap_interval, condition_interval
from pyoco_lab.training import load_denoiser, pretrained

# Bump when what a stored entry holds changes (a measure, the real sets): older entries are then recomputed.
SWEEP_FORMAT = 1
STORE_FILE = "sweep.json"
REAL_ROW = "real clips (train half B)"
HELD_OUT_ROW = "held-out scenes (test split)"
# The motion band a recommended sampling prior must keep (issue #38's target: within [0.5, 2]x real motion).
MOTION_BAND = (0.5, 2.0)
BEST_RULE = (
    "of the priors within [0.5, 2]x real motion and content not worse than the training prior's, the one "
    "whose clips most often keep one scene; the training prior when none"
)
# The content measures kept from the frame yardsticks (the rest of their row is memorisation detail).
CONTENT_KEYS = ("KID-app", "KID-app-ci", "C2ST-frame", "C2ST-frame-ci", "precision-app", "recall-app")


@dataclass(frozen=True)
class ClipJudge:
    """Everything a set of clips is judged against, built once per (resolution, frames, N, seed)."""

    net: appearance.AppearanceNet
    sets: yardsticks.RealSets
    scene: scene_consistency.SceneReference
    real_motion: float  # mean motion energy of the real clips (motion-ratio's unit)


def clip_judge(resolution: int, num_frames: int, num_clips: int, *, seed: int = 0, root=None) -> ClipJudge:
    """The real sets of ``num_clips`` clips (``yardsticks.real_sets``), the appearance network and the
    scene-consistency threshold of the reference clips (train half A)."""
    net = appearance.appearance_net(resolution, root=root, device="cpu", progress=False)
    sets = yardsticks.real_sets(net, resolution, num_clips, num_frames=num_frames, root=root, seed=seed)
    scene = yardsticks.scene_reference(sets, net)
    return ClipJudge(net, sets, scene, float(motion_energy(sets.real).mean()))


def judge_clips(judge: ClipJudge, clips: torch.Tensor, *, seed: int = 0) -> dict:
    """Scene consistency, motion-ratio and content of ``clips`` (N, F, 3, H, W) in [−1, 1]."""
    energy = motion_energy(clips).numpy()
    motion = bootstrap_interval(lambda x: float(x.mean()), energy, seed=seed)
    content = yardsticks.frame_scores(judge.sets, judge.net, clips, seed=seed)
    return {
        **scene_consistency.scene_scores(judge.net, judge.scene, clips, seed=seed),
        "motion-ratio": motion.mean / judge.real_motion,
        "motion-ratio-ci": [motion.low / judge.real_motion, motion.high / judge.real_motion],
        **{key: content[key] for key in CONTENT_KEYS if key in content},
    }


def control_rows(judge: ClipJudge, *, seed: int = 0) -> dict[str, dict]:
    """{row: measures} for the real clips, held-out scenes and the scene-consistency controls (spliced and
    flicker must hold their scene less often than real; frozen and shuffled hold it, and motion-ratio
    catches them)."""
    real = judge.sets.real
    spliced, cuts = scene_consistency.spliced_clips(real, judge.sets.real_scene_ids, seed=seed)
    rows = {REAL_ROW: real, HELD_OUT_ROW: judge.sets.held_out, "spliced": spliced}
    for kind in ("shuffled", "flicker", "frozen"):
        rows[kind] = controls.control_clips(real, kind, seed=seed)
    table = {name: judge_clips(judge, clips, seed=seed) for name, clips in rows.items()}
    jumps = scene_consistency.clip_jumps(judge.net, judge.scene.reference_features, spliced)
    table["spliced"]["splices-caught"] = scene_consistency.splices_caught(jumps, cuts, judge.scene)
    return table


def parse_prior(text: str) -> noise.NoisePrior | None:
    """``own`` (None: the model's training prior), ``iid``, or ``KIND:ALPHA`` (``progressive:5``,
    ``mixed:inf``) → a prior; anything else raises one line naming the accepted forms."""
    if text == "own":
        return None
    kind, _, alpha = text.partition(":")
    try:
        value = 0.0 if kind == "iid" and not alpha else float(alpha)
    except ValueError:
        value = math.nan
    if kind not in noise.KINDS or math.isnan(value) or value < 0 or (kind == "iid" and value != 0):
        raise ValueError(
            f"--prior {text!r} is not a noise prior; pass own, iid, or KIND:ALPHA with KIND one of "
            f"mixed, progressive and ALPHA >= 0 or inf (e.g. progressive:5)"
        )
    return noise.NoisePrior(kind, value)


def prior_name(prior: noise.NoisePrior) -> str:
    """``iid``, ``progressive-2``, ``mixed-inf``: a prior as a file-name-safe label."""
    if prior.kind == "iid":
        return "iid"
    return f"{prior.kind}-{noise.alpha_name(prior.alpha)}"


def _entry_key(
    model: str, sha256: str, prior: noise.NoisePrior, sampler: dict, seed: int, judge: dict
) -> str:
    parts = {
        "format": SWEEP_FORMAT,
        "model_sha256": sha256,
        "prior": [prior.kind, to_jsonable(prior.alpha)],
        "sampler": sampler,
        "seed": int(seed),
        "judge": judge,
    }
    digest = json_digest(parts, 12)
    sampled = prior_name(prior) + (f"+{Reinit(**sampler['reinit']).label}" if "reinit" in sampler else "")
    return f"{model}/{sampled}/{sampler['kind']}{sampler['steps']}/seed{seed}/{digest}"


def sampling_sweep(
    models: list[str],
    priors: list[noise.NoisePrior | None],
    seeds: list[int],
    store: str | Path,
    *,
    num_clips: int = 128,
    sampler: str = "deis",
    num_steps: int = 6,
    sampler_options: dict | None = None,
    reinit: Reinit | None = None,
    batch_size: int = 32,
    judge_seed: int = 0,
    sheets: str | Path | None = None,
    sheet_clips: int = 6,
    call: dict | None = None,
    progress: bool = True,
) -> dict:
    """Sample every model under every prior (None: its own) and seed, judge each set of clips, and keep
    every result in ``store`` (JSON) as it lands; entries already there are not recomputed.

    Returns the store's document: {"controls": {row: measures}, "entries": {key: entry}}, each entry with
    the model, its training prior, the sampling prior, sampler, seed, N, the measures and the wall time.
    With ``sheets`` (a folder), the first seed's first ``sheet_clips`` clips of each (model, prior) are
    drawn as a contact sheet with the cuts the scene-consistency measure found framed in red, so what the
    numbers say can be checked by eye. With ``reinit``, every clip is re-initialised in the low band
    (FreeInit, :mod:`pyoco_lab.reinit`); its settings are part of each entry's key and label. ``call``
    (command, commit, machine, start time) is appended to the document's "calls" with the call's wall time
    and the entries it added.
    """
    store = Path(store)
    document = read_json(store, "sampling sweep") if store.is_file() else {"entries": {}}
    loaded = [(model, *load_denoiser(model, ema=True, device="cpu")) for model in models]
    shapes = {(config.resolution, config.num_frames) for _, _, config in loaded}
    if len(shapes) != 1:
        raise ValueError(f"the models sample different clip shapes {sorted(shapes)}; sweep them separately")
    resolution, num_frames = shapes.pop()
    if num_clips < num_frames:  # the flicker control takes frame t of clip i from clip i + t
        raise ValueError(f"a sweep needs at least as many clips as frames ({num_frames}); got {num_clips}")
    judge = clip_judge(resolution, num_frames, num_clips, seed=judge_seed)
    judge_key = {
        "resolution": resolution,
        "num_frames": num_frames,
        "num_clips": num_clips,
        "seed": judge_seed,
        "scene_threshold": round(judge.scene.threshold, 6),
    }
    if document.get("judge") != judge_key:
        document = {"judge": judge_key, "entries": document.get("entries", {})}
    if "controls" not in document:
        document["controls"] = control_rows(judge, seed=judge_seed)
        atomic_write_text(store, json.dumps(to_jsonable(document), indent=1, sort_keys=True) + "\n")
    sampler_record = {"kind": sampler, "steps": int(num_steps), "options": sampler_options or {}}
    if reinit is not None:  # only then: keys of plain sampling stay those of earlier sweeps
        sampler_record["reinit"] = reinit.record()
    sampled_label = lambda prior: prior_name(prior) + (f"+{reinit.label}" if reinit else "")  # noqa: E731
    added, call_start = [], time.time()
    # a shipped model is named by its file's recorded sha256, a run's checkpoint by its weights'
    digests = {
        m: pretrained.get(m).sha256 if pretrained.is_pretrained(m) else networks.weights_sha256(d)
        for m, d, _ in loaded
    }
    todo = [(m, d, c, p or c.prior, s) for m, d, c in loaded for p in priors for s in seeds]
    for model, denoiser, config, prior, seed in tqdm(todo, desc="sampling sweep", disable=not progress):
        key = _entry_key(model, digests[model], prior, sampler_record, seed, judge_key)
        if key in document["entries"]:
            continue
        start = time.time()
        clips = sample_videos(
            denoiser,
            prior,
            (num_frames, 3, resolution, resolution),
            num_clips,
            sampler=sampler,
            num_steps=num_steps,
            batch_size=batch_size,
            seed=seed,
            device="cpu",
            sampler_options=sampler_options,
            reinit=reinit,
            progress=False,
        )
        if sheets is not None and seed == seeds[0]:
            _save_sheet(
                judge, clips[:sheet_clips], Path(sheets), model, config.prior, sampled_label(prior), seed
            )
        document["entries"][key] = {
            "model": model,
            "trained_prior": prior_name(config.prior),
            "sampled_prior": sampled_label(prior),
            "sampler": sampler_record,
            "seed": int(seed),
            "num_clips": int(num_clips),
            "measures": judge_clips(judge, clips, seed=seed),
            "wall_seconds": round(time.time() - start, 1),
        }
        added.append(key)
        atomic_write_text(store, json.dumps(to_jsonable(document), indent=1, sort_keys=True) + "\n")
    if call is not None:
        record = {**call, "wall_seconds": round(time.time() - call_start, 1), "added": added}
        document.setdefault("calls", []).append(record)
        atomic_write_text(store, json.dumps(to_jsonable(document), indent=1, sort_keys=True) + "\n")
    return document


def sheet_stem(model: str) -> str:
    """A model (``pretrained:NAME`` or a run's path) as one file name: ``pretrained-zoo-32-iid``,
    ``runs-levers-my-run``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")


def _save_sheet(judge, clips, folder: Path, model: str, trained, sampled: str, seed: int) -> Path:
    """A contact sheet of ``clips``: a row per clip, a column per frame, the detected cuts framed in red."""
    jumps = scene_consistency.clip_jumps(judge.net, judge.scene.reference_features, clips)
    cuts = scene_consistency.cut_frames(jumps, judge.scene.threshold)
    rows = [media.to_uint8_frames(clip) for clip in clips]
    labels = [f"clip {i}" for i in range(len(clips))]
    columns = [[f"frame {f}" for f in range(clips.shape[1])]] * len(clips)
    title = (
        f"{model} (trained {prior_name(trained)}) sampled {sampled}, seed {seed}: "
        f"red = a cut (a jump above τ = {judge.scene.threshold:.3f})"
    )
    fig = viz.image_grid_figure(rows, labels, columns, title=title, cuts=cuts, cell=0.9)
    path = viz.save_figure(fig, folder / f"{sheet_stem(model)}__{sampled}.png")
    plt.close(fig)
    return path


def summary_rows(document: dict) -> list[dict]:
    """One row per (model, sampled prior): the mean over seeds of each measure, with a t interval over
    seeds where there are several (``stats.condition_interval``), else the one evaluation's interval."""
    from_seeds: dict[tuple[str, str], list[dict]] = {}
    for entry in document["entries"].values():
        from_seeds.setdefault((entry["model"], entry["sampled_prior"]), []).append(entry)
    rows = []
    for (model, sampled), entries in sorted(from_seeds.items()):
        row = {"model": model, "trained_prior": entries[0]["trained_prior"], "sampled_prior": sampled}
        row["seeds"] = sorted(e["seed"] for e in entries)
        for measure in ("scene-held", "motion-ratio", "KID-app", "cut-rate"):
            values = [e["measures"][measure] for e in entries]
            single = entries[0]["measures"].get(f"{measure}-ci") if len(entries) == 1 else None
            row[measure] = condition_interval(values, single).record()
        rows.append(row)
    return rows


def _interval_text(record: dict) -> str:
    if not math.isfinite(record["low"]):
        return f"{record['mean']:.3g}"
    return f"{record['mean']:.3g} [{record['low']:.3g}, {record['high']:.3g}]"


def quality_record(document: dict, model: str, store: str) -> dict[str, str]:
    """What a shipped model's registry entry records of a sweep (``pretrained.record_quality``): per
    sampled prior, its share of clips that keep one scene beside motion-ratio and KID-app, and how they
    were measured. Keys start with "scene-held", so a later sweep replaces them all."""
    rows = [row for row in summary_rows(document) if row["model"] == model]
    if not rows:
        raise ValueError(f"the sweep in {store} holds no evaluation of {model}")
    out = {}
    for row in rows:
        own = row["sampled_prior"] == row["trained_prior"]
        label = "own prior" if own else f"sampled {row['sampled_prior']}"
        out[f"scene-held ({label})"] = (
            f"{_interval_text(row['scene-held'])}; motion-ratio {_interval_text(row['motion-ratio'])}; "
            f"KID-app {_interval_text(row['KID-app'])}"
        )
    entry = next(e for e in document["entries"].values() if e["model"] == model)
    seeds = sorted({e["seed"] for e in document["entries"].values() if e["model"] == model})
    out["scene-held measured_by"] = (
        f"{store} ({entry['num_clips']} clips, {entry['sampler']['kind']} {entry['sampler']['steps']} steps, "
        f"sampling seeds {', '.join(map(str, seeds))}: t interval over seeds; motion-ratio against real "
        f"train clips (half B), not the held-out ones; real clips hold their scene in "
        f"{_interval_text(_proportion(document['controls'][REAL_ROW]))} of clips)"
    )
    return out


def sampling_choice(document: dict, model: str, prior: noise.NoisePrior, store: str) -> str:
    """What a shipped model's registry records as the reason it samples with ``prior`` by default: that
    prior's row of the sweep beside the training prior's (``pretrained.record_sampling``'s ``chosen_by``)."""
    rows = {row["sampled_prior"]: row for row in summary_rows(document) if row["model"] == model}
    wanted = prior_name(prior)
    if wanted not in rows:
        raise ValueError(
            f"the sweep in {store} has no row of {model} sampled {wanted} "
            f"(it has: {', '.join(sorted(rows))}); add --prior for it"
        )

    def numbers(row: dict) -> str:
        return ", ".join(f"{m} {_interval_text(row[m])}" for m in ("scene-held", "motion-ratio", "KID-app"))

    seeds = ", ".join(map(str, rows[wanted]["seeds"]))
    text = f"{store}, sampled {wanted} (seeds {seeds}): {numbers(rows[wanted])}"
    own = rows.get(rows[wanted]["trained_prior"])
    if own is not None and own is not rows[wanted]:
        text += f"; its training prior {own['sampled_prior']}: {numbers(own)}"
    return text


def best_sampling_prior(document: dict, model: str) -> noise.NoisePrior | None:
    """The prior a sweep's rule recommends for ``model`` (``--recommend best``; rule fixed in
    figures/levers/RUN.md part 8 before the re-made zoo was swept): among the model's rows whose
    motion-ratio lies in ``MOTION_BAND`` and whose content is not worse than at its training prior (KID-app
    interval not wholly above the training prior's), the one whose clips most often keep one scene
    (scene-held); a tie goes to the training prior, then to the lower α. None (the training prior) when no
    row qualifies. The sweep must hold the training prior's row: it is the yardstick of "not worse"."""
    rows = [row for row in summary_rows(document) if row["model"] == model]
    own = next((row for row in rows if row["sampled_prior"] == row["trained_prior"]), None)
    if own is None:
        raise ValueError(
            f"the sweep has no row of {model} sampled with its training prior; --recommend best compares "
            "every prior with it: add --prior own"
        )
    low, high = MOTION_BAND
    qualified = [
        row
        for row in rows
        if low <= row["motion-ratio"]["mean"] <= high and not row["KID-app"]["low"] > own["KID-app"]["high"]
    ]
    if not qualified:
        return None
    best = max(
        qualified,
        key=lambda row: (row["scene-held"]["mean"], row is own, -_alpha_of(row["sampled_prior"])),
    )
    return None if best is own else parse_prior(_prior_text(best["sampled_prior"]))


def _prior_text(name: str) -> str:
    """``progressive-2.5`` → ``progressive:2.5`` (a :func:`prior_name` back in :func:`parse_prior`'s form)."""
    kind, _, alpha = name.partition("-")
    return f"{kind}:{alpha}" if alpha else kind


def _alpha_of(name: str) -> float:
    prior = parse_prior(_prior_text(name))
    return 0.0 if prior is None else prior.alpha


def _proportion(row: dict) -> dict:
    low, high = row["scene-held-ci"]
    return {"mean": row["scene-held"], "low": low, "high": high}


def format_table(document: dict) -> str:
    """A markdown table of :func:`summary_rows` with the real row and the controls above it."""
    lines = [
        "| clips | scene-held | motion-ratio (1 = real) | KID-app | seeds |",
        "|---|---|---|---|---|",
    ]
    first = (REAL_ROW, HELD_OUT_ROW)  # the floor and generalisation first, then the controls
    order = [*first, *sorted(name for name in document["controls"] if name not in first)]
    for name in order:
        row = document["controls"][name]
        held = f"{row['scene-held']:.2f} [{row['scene-held-ci'][0]:.2f}, {row['scene-held-ci'][1]:.2f}]"
        motion = f"{row['motion-ratio']:.2f}"
        lines.append(f"| {name} | {held} | {motion} | {row['KID-app']:.2f} | data |")
    for row in summary_rows(document):
        cells = [
            f"{row[m]['mean']:.2f} [{row[m]['low']:.2f}, {row[m]['high']:.2f}]"
            if math.isfinite(row[m]["low"])
            else f"{row[m]['mean']:.2f}"
            for m in ("scene-held", "motion-ratio", "KID-app")
        ]
        label = f"{row['model']} (trained {row['trained_prior']}) sampled {row['sampled_prior']}"
        lines.append(f"| {label} | {' | '.join(cells)} | {','.join(map(str, row['seeds']))} |")
    return "\n".join(lines)
