"""The real sets every evaluation compares against, and the scores of clips measured against them.

:func:`real_datasets` gives a run's reference split (what it learned from) and its held-out test split;
:func:`subset_clips` draws a seeded subset; :func:`embedded_clip_scores` measures rows of clips on the
embedded data with the lab metrics and the yardsticks (``metrics.lab``, ``metrics.yardsticks``) against
train half A, and adds the ``real-train`` row (half B, the floor at this N), its real rows cached per data,
N, seed and networks. The literature networks' real-set statistics are cached under :func:`reference_cache`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from pyoco_lab import training
from pyoco_lab.data import EmbeddedVideoDataset, UCF101Clips, default_data_root
from pyoco_lab.evaluation.keys import KEY_FORMAT
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json
from pyoco_lab.metrics import appearance, lab, networks, yardsticks
from pyoco_lab.metrics.temporal import temporal_statistics

REAL_ROWS = ("real-test", "real-train")


def real_datasets(
    config: training.TrainConfig,
    reference_split: str = "train",
    *,
    reference_seed: int = 0,
    num_frames: int | None = None,
):
    """(reference clips, held-out test clips) of a run's dataset: what every metric compares against.

    ``reference_split`` is "train" (the split the model learned from: the embedded train split, UCF-101's
    trainlist01) or "all" (train + test: UCF-101's 13,320 videos, the paper's setting). UCF-101 clip starts
    are seeded by ``reference_seed`` and each video's path (``UCF101Clips(seed=...)``), so the real set is
    the same on every machine and every call; the embedded clips are fixed arrays.
    """
    frames = int(num_frames or config.num_frames)
    if config.dataset == "embedded":
        reference = EmbeddedVideoDataset(config.data_root, config.resolution, reference_split, frames)
        test = EmbeddedVideoDataset(config.data_root, config.resolution, "test", frames)
    else:
        options = dict(
            root=config.data_root, resolution=config.resolution, num_frames=frames, seed=reference_seed
        )
        reference = UCF101Clips(split=reference_split, **options)
        test = UCF101Clips(split="test", **options)
    return reference, test


def subset_clips(dataset, count: int, seed: int) -> torch.Tensor:
    """``count`` clips (fewer if the dataset is smaller) drawn without replacement, seeded, in index order."""
    count = min(count, len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.stack(
        [torch.as_tensor(dataset[int(i)]["video"], dtype=torch.float32) for i in order.sort().values]
    )


def embedded_scores(clips, classifier, reference, net, sets, scene, *, seed: int) -> dict:
    """A set of clips' scores on the embedded data: the lab metrics against ``reference`` (the lab
    classifier's features of train half A) and the appearance yardsticks against ``sets``. What a
    generated set, a real row and every control (``evaluation.controls``) are measured with."""
    return {
        **lab.lab_metrics(reference, lab.lab_features(classifier, clips)),
        **yardsticks.clip_scores(sets, net, clips, seed=seed, scene=scene),
    }


def embedded_clip_scores(
    config: training.TrainConfig,
    rows: dict[str, torch.Tensor],
    num_samples: int,
    reference_seed: int,
    device,
    progress: bool,
) -> dict[str, dict]:
    """Lab metrics and yardsticks of each row's clips (embedded data), plus the ``real-train`` row.

    Every row is measured against the same reference, half A of the train clips (``yardsticks.real_sets``,
    seeded by ``reference_seed``): the lab classifier's FVD-lab / FD-frame-lab / FD-motion-lab / IS-lab, and
    the appearance yardsticks (content KID-app, C2ST-frame, C2ST-clip, precision/recall, density/coverage,
    memorisation). ``real-train`` is ``num_samples`` clips of the other half B: the floor a perfect model
    of the training data reaches at this N (``real-test``, the held-out scenes, is generalisation).
    """
    classifier = lab.lab_classifier(
        config.resolution, config.num_frames, root=config.data_root, device=device, progress=progress
    )
    net = appearance.appearance_net(
        config.resolution, root=config.data_root, device=device, progress=progress
    )
    sets = yardsticks.real_sets(
        net,
        config.resolution,
        num_samples,
        num_frames=config.num_frames,
        root=config.data_root,
        seed=reference_seed,
    )
    reference = lab.lab_features(classifier, sets.reference_clips)
    scene = yardsticks.scene_reference(sets, net)
    # The real rows are the same for every run of a sweep (same data, N, seed and networks): measured once.
    cache = real_rows_cache(config, num_samples, reference_seed, classifier, net)
    stored = read_json(cache, "real-rows cache") if cache.is_file() else {}
    # A real row stored before scene consistency was measured is measured again (the same numbers, plus it).
    stored = {name: row for name, row in stored.items() if "scene-held" in row}
    out = {}
    for name, clips in {**rows, "real-train": sets.real}.items():
        if name in REAL_ROWS and name in stored:
            out[name] = stored[name]
            continue
        row = temporal_statistics(clips, intervals=True) if name == "real-train" else {}
        row.update(embedded_scores(clips, classifier, reference, net, sets, scene, seed=reference_seed))
        out[name] = row
    if any(name in REAL_ROWS and name not in stored for name in out):
        atomic_write_text(cache, json.dumps({k: v for k, v in out.items() if k in REAL_ROWS}))
    return out


def real_rows_cache(config, num_samples, reference_seed, classifier, net) -> Path:
    """Where the real rows of an embedded evaluation are kept: keyed by everything that decides them."""
    parts = {
        "format": KEY_FORMAT,
        "data_root": str(Path(config.data_root or default_data_root()).resolve()),
        "resolution": config.resolution,
        "num_frames": config.num_frames,
        "num_samples": int(num_samples),
        "reference_seed": int(reference_seed),
        "networks": [networks.weights_sha256(m) for m in (classifier, net)],
        "bootstrap_resamples": lab.BOOTSTRAP_RESAMPLES,
        "yardsticks": yardsticks.YARDSTICKS_VERSION,
    }
    digest = json_digest(parts, 16)
    return Path(config.data_root or default_data_root()) / "cache" / "real-rows" / f"{digest}.json"


def reference_cache(config, split: str, seed: int, count: int, num_frames: int) -> tuple[Path, dict]:
    """Where the literature networks' real-set statistics are cached, and what decides them."""
    root = Path(config.data_root) if config.data_root else default_data_root()
    key = {
        "format": KEY_FORMAT,
        "dataset": config.dataset,
        "data_root": str(root.resolve()),
        "split": split,
        "clip_seed": int(seed),
        "resolution": config.resolution,
        "num_frames": int(num_frames),
        "count": int(count),
    }
    return root / "cache" / "reference-stats", key


def reference_settings(
    reference_split: str, reference_seed: int, real_train, num_test: int, max_real
) -> dict:
    return {
        "reference_split": reference_split,
        "reference_seed": int(reference_seed),
        "num_real_reference": len(real_train),
        "num_real_test": num_test,
        # with "all" the held-out clips are inside the reference set: the real row is not held out then
        "real_test_in_reference": reference_split == "all",
        "max_real": max_real,
    }
