"""Metric controls: can the metric tell real motion from frozen, shuffled or flickering video?

Before a sweep's ranking means anything, the metric must rank real clips above the failure modes the α
sweep moves between (α → ∞ freezes, α = 0 finetuning flickers). Each control is made from held-out real
clips, so it has real appearance and only its time axis is broken:

* ``real``: the held-out clips as they are (the floor a perfect generator reaches at this N);
* ``frozen``: frame 0 repeated (what α = ∞ tends to);
* ``shuffled``: each clip's frames in a random order (right frames, wrong motion);
* ``flicker``: frame t of clip i taken from clip i + t (every frame from a different clip: i.i.d. flicker);
* ``blurred``: every frame 4×4-blurred (``corruptions.blur``): the real clip's coarse motion, no detail;
* ``motion on noise``: a Gaussian noise image (the clips' channel mean and std) plus each real clip's change
  since its first frame, x_t = n + (r_t − r_0): *exactly* the real frame differences — the input of the lab
  classifier's motion stream, and the motion energy — with no content. The content-free smooth motion a
  motion-driven clip metric cannot see, and the clip yardstick's content score must.

:func:`evaluate_controls` scores them with exactly what ``evaluate_run`` gives a generated set (temporal
statistics; FVD-lab, IS-lab, FD-frame-lab, FD-motion-lab with their bootstrap intervals against the same
reference; the yardsticks of ``metrics.yardsticks``: content KID-app, C2ST-frame, C2ST-clip, precision,
recall, density, coverage, memorisation), one evaluation per seed (each seed draws its own subset of
held-out clips), cached in a JSON file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from pyoco_lab import training
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json
from pyoco_lab.metrics import appearance, corruptions, lab, networks, yardsticks
from pyoco_lab.metrics.evaluate import real_datasets, subset_clips, validate_device
from pyoco_lab.metrics.temporal import temporal_statistics

CONTROLS = {
    "real": "held-out real clips (the floor)",
    "frozen": "frame 0 repeated",
    "shuffled": "frames of each clip in random order",
    "flicker": "frame t from a different clip for every t",
    "blurred": "every frame 4x4-blurred: coarse real motion, no detail",
    "motion on noise": "a noise image plus the real clip's change since frame 0: real motion, no content",
}
CONTROLS_FORMAT = 3  # 2: the blurred control and the yardsticks; 3: keyed by the metric networks' weights


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
    if kind == "blurred":
        return corruptions.blur(clips)
    if kind == "motion on noise":
        first = clips[:, :1]
        noise = corruptions.corrupt_frames(first.flatten(0, 1), "noise", seed=seed).reshape(first.shape)
        return noise + (clips - first)  # not clamped: the frame differences stay exactly the real ones
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
    decides them (dataset, resolution, frames, N, seed, reference, the metric networks' weights' sha256).
    """
    if num_samples < 2:
        raise ValueError(f"controls need at least 2 clips, got {num_samples}")
    device = validate_device(device)
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
        row.update(lab.lab_metrics(reference, lab.lab_features(classifier, videos)))
        row.update(yardsticks.clip_scores(sets, net, videos, seed=seed, scene=scene))
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
