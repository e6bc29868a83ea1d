"""The metric controls scored: each control of ``metrics.controls`` measured as a generated set is.

:func:`evaluate_controls` makes every control of :data:`pyoco_lab.metrics.controls.CONTROLS` (real, frozen,
shuffled, flicker, blurred, motion on noise) from real clips and scores it with exactly what an evaluation
gives a generated set (temporal statistics; on the embedded data the lab metrics and the yardsticks against
the same reference, :func:`pyoco_lab.evaluation.references.embedded_scores`), one evaluation per seed,
cached in a JSON file. A measure that does not rank real above its controls carries no verdict
(``analysis.verdict_rules``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pyoco_lab import devices, training
from pyoco_lab.evaluation.references import embedded_scores, real_datasets, subset_clips
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json
from pyoco_lab.metrics import appearance, lab, networks, yardsticks
from pyoco_lab.metrics.controls import CONTROLS, control_clips
from pyoco_lab.metrics.temporal import temporal_statistics

CONTROLS_FORMAT = 3  # 2: the blurred control and the yardsticks; 3: keyed by the metric networks' weights


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
    decides them (dataset, resolution, frames, N, seed, reference, the metric networks' weights' sha256).
    """
    if num_samples < 2:
        raise ValueError(f"controls need at least 2 clips, got {num_samples}")
    device = devices.validate_device(device)
    store = Path(store) if store is not None else None
    cached = read_json(store, "metric controls") if store is not None and store.is_file() else {}
    classifier = net = None
    if config.dataset == "embedded":
        classifier = lab.lab_classifier(
            config.resolution, config.num_frames, root=config.data_root, device=device, progress=progress
        )
        net = appearance.appearance_net(
            config.resolution, root=config.data_root, device=device, progress=progress
        )
    key = _controls_key(config, num_samples, reference_split, reference_seed, classifier, net)
    entries = cached.get(key, {})
    results: dict[str, list[dict]] = {kind: [] for kind in CONTROLS}
    for seed in seeds:
        entry = entries.get(str(seed))
        if entry is None:
            entry = _control_rows(config, num_samples, seed, reference_split, reference_seed, classifier, net)
            entries[str(seed)] = entry
            if store is not None:
                cached[key] = entries
                atomic_write_text(store, json.dumps(cached, indent=2, sort_keys=True) + "\n")
        for kind in CONTROLS:
            results[kind].append(entry[kind])
    return results


def _control_rows(config, num_samples, seed, reference_split, reference_seed, classifier, net) -> dict:
    """One seed's controls. Embedded data: made from ``num_samples`` clips of train half B (the yardsticks'
    real row; each seed its own draw) and measured against half A, as ``evaluate_run`` measures a
    generated set; other datasets: held-out clips, temporal statistics only."""
    if classifier is None:
        _, test = real_datasets(config, reference_split, reference_seed=reference_seed)
        clips = subset_clips(test, num_samples, seed)
        return {
            kind: temporal_statistics(control_clips(clips, kind, seed=seed), intervals=True)
            for kind in CONTROLS
        }
    sets = yardsticks.real_sets(
        net, config.resolution, num_samples, num_frames=config.num_frames, root=config.data_root, seed=seed
    )
    reference = lab.lab_features(classifier, sets.reference_clips)
    scene = yardsticks.scene_reference(sets, net)
    entry = {}
    for kind in CONTROLS:
        videos = control_clips(sets.real, kind, seed=seed)
        row = temporal_statistics(videos, intervals=True)
        row.update(embedded_scores(videos, classifier, reference, net, sets, scene, seed=seed))
        entry[kind] = row
    return entry


def _controls_key(config, num_samples, reference_split, reference_seed, classifier, net) -> str:
    def weights_hash(model):  # the weights' content, not their file: bitwise-equal weights share the cache
        return networks.weights_sha256(model)[:16] if model is not None else None

    parts = {
        "format": CONTROLS_FORMAT,
        "dataset": config.dataset,
        "data_root": str(config.data_root) if config.data_root else None,
        "resolution": config.resolution,
        "num_frames": config.num_frames,
        "num_samples": int(num_samples),
        "reference_split": reference_split,
        "reference_seed": int(reference_seed),
        "lab_classifier": weights_hash(classifier),
        "appearance_net": weights_hash(net),
        "yardsticks": yardsticks.YARDSTICKS_VERSION,
        "lab_classifier_version": lab.LAB_CLASSIFIER_VERSION,
        "bootstrap_resamples": lab.BOOTSTRAP_RESAMPLES,
    }
    digest = json_digest(parts, 12)
    return f"{config.dataset}-{config.resolution}px-{config.num_frames}f-n{num_samples}-{digest}"
