"""Where an evaluation lives: its key (everything that decides its numbers) and the ``eval.json`` store.

Each result is stored in a run's ``eval.json`` under :func:`evaluation_key`, which covers everything that
decides the numbers (the checkpoint's step and the sha256 of its EMA weights, the sampler and its options,
the sample count, seed, batch size and device type, the metric weight files' hashes and the protocol), so an
entry is reused (:func:`cached_evaluation`) only for the very same evaluation. :func:`evaluation_parts`
needs no run folder, so a committed result can be matched before its run exists (``analysis.run_records``).
Bump :data:`KEY_FORMAT` when the key's contents change: older entries then stop matching (recomputed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import torch

from pyoco_lab import devices, edm, training
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json, sha256_file
from pyoco_lab.metrics import appearance, lab, networks, yardsticks

EVAL_FILE = "eval.json"
# 2: protocol holds phase, reference split and reference seed; 3: bootstrap *-ci intervals; 4: the yardsticks
# (appearance network, two-sample tests, ...) and one reference for every lab metric (train clips, half A)
KEY_FORMAT = 4
REFERENCE_SPLITS = ("train", "all")


@dataclasses.dataclass(frozen=True)
class EvaluationKey:
    """Where an evaluation lives in ``eval.json``: ``key`` (readable prefix + hash of ``parts``).

    ``checkpoint`` is the checkpoint folder loaded (or the ``pretrained:NAME`` of a shipped model),
    ``run_dir`` the folder whose ``eval.json`` holds the entry (the run's, or ``store_dir``).
    """

    key: str
    parts: dict
    checkpoint: Path | str
    run_dir: Path
    config: training.TrainConfig
    device: torch.device

    def with_metric_weights(self, hashes: dict[str, str]) -> EvaluationKey:
        """The same key with these weight-file hashes ({file name: sha256}), e.g. of files just checked."""
        parts = {**self.parts, "metric_weights": dict(sorted(hashes.items()))}
        return dataclasses.replace(self, key=key_name(parts), parts=parts)


def resolve_source(source, store_dir) -> tuple[dict, Path | str, Path, training.TrainConfig]:
    """(checkpoint record, what to load, eval.json's folder, config) of a run, checkpoint or shipped model."""
    if training.pretrained.is_pretrained(source):
        model = training.pretrained.get(str(source))
        if store_dir is None:
            raise ValueError(
                f"{source} is a model shipped with the lab and has no run folder; pass store_dir= "
                "(the folder whose eval.json keeps its evaluations)"
            )
        record = {"step": None, "pretrained": model.name, "ema_sha256": model.sha256}
        return record, f"{training.pretrained.PREFIX}{model.name}", Path(store_dir), model.train_config
    checkpoint, run_dir = training.resolve_checkpoint(source)
    record = {"step": training.recorded_step(checkpoint), "ema_sha256": training.ema_sha256(checkpoint)}
    folder = Path(store_dir) if store_dir is not None else run_dir
    return record, checkpoint, folder, training.load_config(run_dir)


def used_weights(weights: Path, config: training.TrainConfig, num_frames: int) -> list:
    """The literature networks an evaluation uses: all present ones for videos, Inception for images."""
    used = networks.used_detectors(weights, num_frames)
    if config.phase == "image":
        used = [(spec, path) for spec, path in used if spec.metric == "FID-frame"]
    return used


@dataclasses.dataclass(frozen=True)
class EvaluationRequest:
    """One evaluation: which weights, how they are sampled, and against which real data.

    ``source`` is a run folder (its newest checkpoint), one checkpoint folder, or ``pretrained:NAME``
    (then ``store_dir`` holds its ``eval.json``). The sampler is an ``edm.SAMPLERS`` kind with its steps
    and options (``s_churn``/``step`` for "stochastic", ``order`` for "deis"). ``num_frames`` (image models
    only) is the clip length of the real reference and lab classifier (default: the config's). Every field
    enters the key (:meth:`key`); how a call runs (progress bars,
    writing, reuse) does not, so it is passed to :func:`evaluate` instead.
    """

    source: str | os.PathLike
    num_samples: int = 64
    sampler: str = "heun"
    num_steps: int = 18
    sampler_options: dict | None = None
    batch_size: int = 16
    seed: int = 0
    device: str | torch.device = "auto"
    weights_dir: str | os.PathLike | None = None
    max_real: int = 2048
    reference_split: str = "train"
    reference_seed: int = 0
    num_frames: int | None = None
    store_dir: str | os.PathLike | None = None

    def check(self) -> None:
        """Refuse a request that cannot run, before anything is loaded (one line naming the fix)."""
        if self.num_samples < 2:
            raise ValueError(
                "--num-samples must be at least 2 (Fréchet distances need a covariance), "
                f"got {self.num_samples}"
            )
        if self.sampler not in edm.SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(edm.SAMPLERS)}")

    def parts(self, config: training.TrainConfig, checkpoint: dict) -> dict:
        """Everything that decides this evaluation's numbers (what :meth:`key` hashes), for a run of
        ``config`` and a ``checkpoint`` record; needs no run folder, so a committed result can be matched
        before its run exists on this machine (``analysis.run_records``)."""
        if self.reference_split not in REFERENCE_SPLITS:
            raise ValueError(
                f"reference_split must be 'train' (trainlist01 / the embedded train split) or 'all' "
                f"(train + test: UCF-101's 13,320 videos), got {self.reference_split!r}"
            )
        device = devices.validate_device(self.device)
        frames = int(self.num_frames or config.num_frames)
        weights = Path(self.weights_dir) if self.weights_dir is not None else networks.weights_dir()
        used = {path.name: sha256_file(path) for _, path in used_weights(weights, config, frames)}
        return {
            "format": KEY_FORMAT,
            "checkpoint": checkpoint,
            "sampler": self.sampler,
            "num_steps": int(self.num_steps),
            "sampler_options": canonical(self.sampler_options or {}),
            "num_samples": int(self.num_samples),
            "seed": int(self.seed),
            "batch_size": int(self.batch_size),
            "device_type": device.type,
            "metric_weights": used,
            "protocol": {
                "dataset": config.dataset,
                "phase": config.phase,
                "reference_split": self.reference_split,
                "reference_seed": int(self.reference_seed),
                "test_split": "test",
                "resolution": config.resolution,
                "num_frames": frames,
                "noise": config.noise,
                "alpha": canonical(config.alpha),
                "class_conditional": config.class_conditional,
                "lab_classifier_version": lab.LAB_CLASSIFIER_VERSION
                if config.dataset == "embedded"
                else None,
                "yardsticks": [appearance.APPEARANCE_VERSION, yardsticks.YARDSTICKS_VERSION]
                if config.dataset == "embedded"
                else None,
                "max_real": int(self.max_real),
            },
        }

    def key(self) -> EvaluationKey:
        """The ``eval.json`` key of this evaluation, e.g. ``heun-18steps-n64-seed0-step0000300-3f2a9c0b71de``.

        The readable part names the sampler, steps, sample count, seed and checkpoint step (``image-`` first
        for an image model); the 12 hex digits hash everything that decides the numbers
        (:attr:`EvaluationKey.parts`): the checkpoint (step, sha256 of its ``ema.safetensors``; name and
        sha256 of a ``pretrained:NAME`` model), the sampler options, the batch size (the mixed prior's noise
        is drawn batch by batch, so other batches give other samples), the device type (the stochastic
        sampler draws its churn noise there; CUDA rounds differently), the sha256 of each literature weight
        file that will be used, and the protocol (dataset, phase, reference split and the seed of its clips,
        resolution, frames, noise prior, lab classifier version, max_real). Nothing is loaded but
        ``config.json`` and the hashed files.
        """
        record, checkpoint, run_dir, config = resolve_source(self.source, self.store_dir)
        parts = self.parts(config, record)
        device = devices.validate_device(self.device)
        return EvaluationKey(key_name(parts), parts, checkpoint, run_dir, config, device)


def evaluation_parts(config: training.TrainConfig, checkpoint: dict, *args, **options) -> dict:
    """:meth:`EvaluationRequest.parts` of ``EvaluationRequest(None, *args, **options)`` (num_samples,
    sampler, num_steps and the request's keywords): the key's contents from a config and a checkpoint
    record."""
    return EvaluationRequest(None, *args, **options).parts(config, checkpoint)


def evaluation_key(run_or_checkpoint: str | os.PathLike, *args, **options) -> EvaluationKey:
    """:meth:`EvaluationRequest.key` of ``EvaluationRequest(run_or_checkpoint, *args, **options)``, e.g.
    ``heun-18steps-n64-seed0-step0000300-3f2a9c0b71de``; nothing is loaded but ``config.json`` and the
    hashed files."""
    return EvaluationRequest(run_or_checkpoint, *args, **options).key()


def key_name(parts: dict) -> str:
    """Readable prefix (sampler, steps, N, seed, checkpoint step) + 12 hex of the hash of all ``parts``."""
    digest = json_digest(parts, 12)
    checkpoint = parts["checkpoint"]
    step = checkpoint["step"]
    if checkpoint.get("pretrained"):
        step_name = f"pretrained-{checkpoint['pretrained']}"
    else:
        step_name = f"step{step:07d}" if step is not None else "stepNA"
    prefix = "image-" if parts["protocol"].get("phase") == "image" else ""
    return (
        f"{prefix}{parts['sampler']}-{parts['num_steps']}steps-n{parts['num_samples']}-seed{parts['seed']}-"
        f"{step_name}-{digest}"
    )


def cached_evaluation(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 64,
    sampler: str = "heun",
    num_steps: int = 18,
    **options,
) -> dict | None:
    """The stored result of exactly this evaluation (the arguments of ``evaluate_run``), or None.

    Hashes the checkpoint's EMA weights and the metric weight files to build :func:`evaluation_key`; samples
    nothing. Entries under other keys (other checkpoints, settings, or older key formats) never match.
    """
    for unused in ("progress", "write", "reuse"):  # accepted so evaluate_run's arguments can be passed as is
        options.pop(unused, None)
    key = evaluation_key(run_or_checkpoint, num_samples, sampler, num_steps, **options)
    entry = read_store(key.run_dir / EVAL_FILE).get(key.key)
    return entry if isinstance(entry, dict) and "generated" in entry else None


def canonical(value):
    """Numbers as floats (``s_churn=0`` and ``0.0`` are the same evaluation), inf as text, keys sorted."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else str(float(value))
    return value


def read_store(path: Path) -> dict:
    """The entries of ``eval.json`` ({} when absent); a file that is not a JSON object raises, naming it."""
    if not path.is_file():
        return {}
    stored = read_json(path, "evaluation cache")  # names the file when it is not JSON
    if not isinstance(stored, dict):
        raise ValueError(
            f"{path} is not an evaluation cache (a JSON object); move it away to start a fresh one"
        )
    return stored


def store_entry(path: Path, key: str, results: dict) -> None:
    """Add ``results`` under ``key`` to the JSON file, atomically (a crash never leaves half a file)."""
    existing = read_store(path)
    existing[key] = results
    atomic_write_text(path, json.dumps(existing, indent=2, sort_keys=True, allow_nan=True))
