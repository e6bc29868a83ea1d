"""Metric controls: can the metric tell real motion from frozen, shuffled or flickering video?

Before a sweep's ranking means anything, the metric must rank real clips above the failure modes the α
sweep moves between (α → ∞ freezes, α = 0 finetuning flickers). Each control is made from held-out real
clips, so it has real appearance and only its time axis is broken:

* ``real``: the held-out clips as they are (the floor a perfect generator reaches at this N);
* ``frozen``: frame 0 repeated (what α = ∞ tends to);
* ``shuffled``: each clip's frames in a random order (right frames, wrong motion);
* ``flicker``: frame t of clip i taken from clip i + t (every frame from a different clip: i.i.d. flicker).

:func:`evaluate_controls` scores them with exactly what ``evaluate_run`` gives a generated set (temporal
statistics; FVD-lab, IS-lab, FD-frame-lab with their bootstrap intervals against the same reference), one
evaluation per seed (each seed draws its own subset of held-out clips), cached in a JSON file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from pyoco_lab import training
from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.metrics import lab
from pyoco_lab.metrics.evaluate import real_datasets, subset_clips, validate_device
from pyoco_lab.metrics.temporal import temporal_statistics

CONTROLS = {
    "real": "held-out real clips (the floor)",
    "frozen": "frame 0 repeated",
    "shuffled": "frames of each clip in random order",
    "flicker": "frame t from a different clip for every t",
}
CONTROLS_FORMAT = 1


def control_clips(clips: torch.Tensor, kind: str, *, seed: int = 0) -> torch.Tensor:
    """The ``kind`` control (a key of :data:`CONTROLS`) made from real clips (B, F, C, H, W)."""
    if kind not in CONTROLS:
        raise ValueError(f"unknown control {kind!r}; choose one of {', '.join(CONTROLS)}")
    if clips.ndim != 5 or clips.shape[1] < 2:
        raise ValueError(f"controls need clips (B, F >= 2, C, H, W), got {tuple(clips.shape)}")
    b, f = clips.shape[:2]
    if kind == "real":
        return clips.clone()
    if kind == "frozen":
        return clips[:, :1].expand_as(clips).clone()
    if kind == "shuffled":
        generator = torch.Generator().manual_seed(seed)
        order = torch.stack([_non_identity_permutation(f, generator) for _ in range(b)])
        return torch.stack([clips[i, order[i]] for i in range(b)])
    if b < f:
        raise ValueError(f"the flicker control needs at least as many clips as frames ({f}), got {b}")
    source = (torch.arange(b)[:, None] + torch.arange(f)[None, :]) % b  # clip of frame t of video i
    return clips[source, torch.arange(f)[None, :]]


def _non_identity_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    while True:
        order = torch.randperm(n, generator=generator)
        if not torch.equal(order, torch.arange(n)):
            return order


def evaluate_controls(
    config: training.TrainConfig,
    num_samples: int,
    *,
    seeds: tuple[int, ...] = (0,),
    reference_split: str = "train",
    reference_seed: int = 0,
    store: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, list[dict]]:
    """{control: [metrics per seed]} for the clips a run of ``config`` (dataset, resolution, frames) makes.

    The metrics are the keys of an ``evaluate_run`` row (temporal statistics, and the lab metrics on the
    embedded dataset). With ``store`` (a JSON file) results are cached under a key of everything that
    decides them (dataset, resolution, frames, N, seed, reference, lab classifier file's sha256).
    """
    if num_samples < 2:
        raise ValueError(f"controls need at least 2 clips, got {num_samples}")
    device = validate_device(device)
    reference, test = real_datasets(config, reference_split, reference_seed=reference_seed)
    classifier = None
    if config.dataset == "embedded":
        classifier = lab.lab_classifier(
            config.resolution, config.num_frames, root=config.data_root, device=device, progress=progress
        )
    key = _controls_key(config, num_samples, reference_split, reference_seed, classifier)
    store = Path(store) if store is not None else None
    cached = read_json(store, "metric controls") if store is not None and store.is_file() else {}
    entries = cached.get(key, {})
    features = None
    results: dict[str, list[dict]] = {kind: [] for kind in CONTROLS}
    for seed in seeds:
        entry = entries.get(str(seed))
        if entry is None:
            clips = subset_clips(test, num_samples, seed)
            if classifier is not None and features is None:
                features = lab.cached_lab_features(classifier, reference, reference_split, progress=progress)
            entry = {}
            for kind in CONTROLS:
                videos = control_clips(clips, kind, seed=seed)
                row = temporal_statistics(videos, intervals=True)
                if classifier is not None:
                    row.update(lab.lab_metrics(features, lab.lab_features(classifier, videos)))
                entry[kind] = row
            entries[str(seed)] = entry
            if store is not None:
                cached[key] = entries
                atomic_write_text(store, json.dumps(cached, indent=2, sort_keys=True) + "\n")
        for kind in CONTROLS:
            results[kind].append(entry[kind])
    return results


def _controls_key(config, num_samples, reference_split, reference_seed, classifier) -> str:
    classifier_hash = None
    if classifier is not None and classifier.cache_path is not None:
        classifier_hash = hashlib.sha256(Path(classifier.cache_path).read_bytes()).hexdigest()[:16]
    parts = {
        "format": CONTROLS_FORMAT,
        "dataset": config.dataset,
        "data_root": str(config.data_root) if config.data_root else None,
        "resolution": config.resolution,
        "num_frames": config.num_frames,
        "num_samples": int(num_samples),
        "reference_split": reference_split,
        "reference_seed": int(reference_seed),
        "lab_classifier": classifier_hash,
        "lab_classifier_version": lab.LAB_CLASSIFIER_VERSION,
        "bootstrap_resamples": lab.BOOTSTRAP_RESAMPLES,
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    return f"{config.dataset}-{config.resolution}px-{config.num_frames}f-n{num_samples}-{digest}"
