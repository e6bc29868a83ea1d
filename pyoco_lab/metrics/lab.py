"""The lab's own video metrics: FVD-lab, IS-lab and FD-frame-lab, from a small classifier trained here.

The paper ranks models with networks we cannot download (I3D for FVD, a UCF-101 C3D for IS, Inception for
frame FID). For the embedded dataset we do what those metrics do, with a network the lab trains itself in a
minute on CPU, the way C3D was trained on UCF-101 before being used to score UCF-101 generators:

* ``LabClassifier``: an appearance stream over frames and a motion stream over frame differences, trained
  on the train split to predict the clip's class label and, as a second head, whether the clip plays
  forwards or backwards (arrow of time). The second task forces the temporal layers to look at motion, not
  only at appearance, so that a frozen or shuffled video lands away from real ones in feature space.
* ``FVD-lab``: Fréchet distance between pooled (appearance + motion) features of real and generated clips.
* ``IS-lab``: Inception Score of the class head's softmax over generated clips.
* ``FD-frame-lab``: Fréchet distance between the appearance stream's features of all frames.
* ``FD-motion-lab``: Fréchet distance of the motion stream's pooled features alone (the motion half of
  FVD-lab's features): the clip yardstick's *motion* score, reported beside the content score
  (``metrics.yardsticks``: KID-app of the clips' frames), because FVD-lab is carried by its motion stream
  (issue #22: flicker 6,060, shuffled 191, frozen 113, real 14, while the appearance half barely moved).

FD-frame-lab fails its controls (Gaussian noise, shuffled pixels and flat colour score closer to the
training frames than held-out real frames do): it is kept for the record of older runs, and verdicts
about frame content use ``metrics.yardsticks`` instead.

These numbers rank runs *within the lab* (same classifier version, resolution and frame count); they are
not comparable to the paper's FVD/IS/FID values. The classifier is trained once per (dataset, resolution,
frames) and cached under ``<data root>/cache`` with its version in the file name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from pyoco_lab.data import EmbeddedVideoDataset, default_data_root
from pyoco_lab.fileio import follow_umask
from pyoco_lab.metrics.frechet import FeatureStats, frechet_distance, frechet_distance_from_features
from pyoco_lab.metrics.scores import inception_score, splits_for
from pyoco_lab.progress import tqdm
from pyoco_lab.stats import bootstrap_interval

# Bump when the architecture, the training recipe or the features change: old caches are then ignored.
LAB_CLASSIFIER_VERSION = 2
LAB_METRIC_NAMES = ("FVD-lab", "IS-lab", "FD-frame-lab", "FD-motion-lab")
BOOTSTRAP_RESAMPLES = 100  # resamples of the generated clips behind each *-ci interval


def _encoder(width: int) -> nn.Sequential:
    """Small 2D conv stack, 4x downsampling; no normalisation layers (they dominate CPU time here)."""
    return nn.Sequential(
        nn.Conv2d(3, width, 4, stride=2, padding=1),
        nn.SiLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.SiLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.SiLU(),
    )


def _pool(maps: torch.Tensor) -> torch.Tensor:
    """Mean and spread of each channel over the image: the spread reacts to texture, noise and blur."""
    return torch.cat([maps.mean(dim=(2, 3)), maps.std(dim=(2, 3))], dim=1)


class LabClassifier(nn.Module):
    """Two streams, as in two-stream action recognition: appearance of each frame, and motion.

    The motion stream encodes frame differences x_{t+1} − x_t (an explicit temporal derivative: at 32 px
    a camera pan moves a fraction of a pixel per frame, which a small net trained for a minute does not
    find from raw frames) and mixes them over time with a 1D convolution. A frozen video has zero
    differences and a shuffled one has large, incoherent ones, so both land away from real clips.
    """

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        self.num_classes, self.width = num_classes, width
        self.cache_path: Path | None = None  # the file lab_classifier() loaded or wrote, if any
        self.appearance = _encoder(width)
        self.motion = _encoder(width)
        self.temporal = nn.Sequential(nn.Conv1d(4 * width, 4 * width, 3, padding=1), nn.SiLU())
        self.class_head = nn.Linear(8 * width, num_classes)
        self.direction_head = nn.Linear(8 * width, 2)

    def encode(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(frame features (B, F, 4w), video features (B, 8w)) of (B, F, 3, H, W) videos in [−1, 1]."""
        b = videos.shape[0]
        if videos.shape[1] < 2:
            raise ValueError(f"the lab classifier needs at least 2 frames, got {videos.shape[1]}")
        frames = _pool(self.appearance(rearrange(videos, "b f c h w -> (b f) c h w")))
        frame_features = rearrange(frames, "(b f) d -> b f d", b=b)
        # ×4: differences are small; bring them to the scale of frames so one init suits both streams.
        diffs = 4 * (videos[:, 1:] - videos[:, :-1])
        motion = rearrange(
            _pool(self.motion(rearrange(diffs, "b f c h w -> (b f) c h w"))), "(b f) d -> b d f", b=b
        )
        video_features = torch.cat([frame_features.mean(dim=1), self.temporal(motion).mean(dim=2)], dim=1)
        return frame_features, video_features

    def forward(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits (B, K), direction logits (B, 2))."""
        _, video_features = self.encode(videos)
        return self.class_head(video_features), self.direction_head(video_features)


@dataclass(frozen=True)
class LabFeatures:
    """What the lab metrics need from one set of clips."""

    video: np.ndarray  # (N, 8w) pooled appearance + motion features → FVD-lab
    frame: np.ndarray  # (N·F, 4w) per-frame features → FD-frame-lab
    probabilities: np.ndarray  # (N, K) class softmax → IS-lab


@torch.no_grad()
def lab_features(
    classifier: LabClassifier,
    clips,
    *,
    batch_size: int = 32,
    max_items: int | None = None,
    progress: bool = False,
) -> LabFeatures:
    """Features of a (N, F, 3, H, W) tensor in [−1, 1], or of a dataset whose items hold ``"video"``."""
    device = next(classifier.parameters()).device
    classifier.eval()
    total = len(clips) if max_items is None else min(len(clips), max_items)
    video, frame, probs = [], [], []
    for start in tqdm(range(0, total, batch_size), desc="lab features", disable=not progress, leave=False):
        stop = min(start + batch_size, total)
        batch = clips[start:stop] if isinstance(clips, torch.Tensor) else _stack(clips, range(start, stop))
        if batch.ndim != 5 or batch.shape[2] != 3:
            raise ValueError(f"clips must have shape (N, F, 3, H, W), got {tuple(batch.shape)}")
        frames_f, video_f = classifier.encode(batch.to(device, torch.float32))
        video.append(video_f.double().cpu())
        frame.append(rearrange(frames_f, "b f d -> (b f) d").double().cpu())
        probs.append(classifier.class_head(video_f).double().softmax(dim=1).cpu())
    return LabFeatures(torch.cat(video).numpy(), torch.cat(frame).numpy(), torch.cat(probs).numpy())


@torch.no_grad()
def lab_frame_features(
    classifier: LabClassifier, frames: torch.Tensor, *, batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """Appearance features (N, 4w) of single frames (N, 3, H, W) in [−1, 1]: what FD-frame-lab compares.

    The same features as :func:`lab_features`' ``frame`` (the appearance stream of every frame), for images
    that are not clips (an image model's samples, Table 5's "Image Diffusion" row); no motion stream, so one
    frame is enough.
    """
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[1] != 3:
        shape = tuple(frames.shape) if hasattr(frames, "shape") else type(frames).__name__
        raise ValueError(f"frames must have shape (N, 3, H, W), got {shape}")
    device = next(classifier.parameters()).device
    classifier.eval()
    out = []
    for start in tqdm(
        range(0, len(frames), batch_size), desc="lab frames", disable=not progress, leave=False
    ):
        batch = frames[start : start + batch_size].to(device, torch.float32)
        out.append(_pool(classifier.appearance(batch)).double().cpu())
    return torch.cat(out).numpy()


def frame_distance(real_frames: np.ndarray, generated_frames: np.ndarray) -> float:
    """FD-frame-lab of two sets of per-frame features (``LabFeatures.frame``, :func:`lab_frame_features`)."""
    return frechet_distance_from_features(real_frames, generated_frames).distance


def frame_distance_interval(
    real_frames: np.ndarray, generated_frames: np.ndarray, *, num_resamples: int = BOOTSTRAP_RESAMPLES
) -> list[float]:
    """95% bootstrap interval [low, high] of :func:`frame_distance` over the generated frames (reference
    fixed), for independently sampled frames such as an image model's (Table 5's "Image Diffusion" row)."""
    reference = FeatureStats.from_features(real_frames)
    interval = bootstrap_interval(
        lambda frames: _distance_to(reference, frames), generated_frames, num_resamples=num_resamples
    )
    return [interval.low, interval.high]


def lab_metrics(
    real: LabFeatures,
    generated: LabFeatures,
    *,
    num_splits: int = 10,
    num_resamples: int = BOOTSTRAP_RESAMPLES,
) -> dict[str, float]:
    """FVD-lab, IS-lab (± std over splits, of ``generated``), FD-frame-lab and FD-motion-lab between two
    feature sets.

    ``FVD-lab-ci`` and ``FD-frame-lab-ci`` are 95% bootstrap intervals over the generated clips (the
    reference set fixed, as every run of a sweep shares it): the sampling spread of one evaluation, what a
    single-seed table row reports (``pyoco_lab.stats.condition_interval``). Frames are resampled clip by
    clip, so a clip's frames stay together.
    """
    is_mean, is_std = inception_score(
        generated.probabilities, num_splits=splits_for(len(generated.probabilities), num_splits)
    )
    video_ref = FeatureStats.from_features(real.video)
    frame_ref = FeatureStats.from_features(real.frame)
    num_clips = len(generated.video)
    frames_per_clip = len(generated.frame) // num_clips
    clip_frames = generated.frame.reshape(num_clips, frames_per_clip, -1)

    motion = slice(video_ref.mean.shape[0] // 2, None)  # the motion stream's half of the clip features
    motion_ref = FeatureStats.from_features(real.video[:, motion])

    def fvd(video: np.ndarray) -> float:
        return _distance_to(video_ref, video)

    def fd_motion(video: np.ndarray) -> float:
        return _distance_to(motion_ref, video[:, motion])

    def fd_frame(clips: np.ndarray) -> float:
        return _distance_to(frame_ref, clips.reshape(-1, clips.shape[-1]))

    results = {
        "FVD-lab": fvd(generated.video),
        "IS-lab": is_mean,
        "IS-lab-std": is_std,
        "FD-frame-lab": fd_frame(clip_frames),
        "FD-motion-lab": fd_motion(generated.video),
    }
    if num_resamples and num_clips >= 2:
        for name, statistic, samples in (
            ("FVD-lab", fvd, generated.video),
            ("FD-frame-lab", fd_frame, clip_frames),
            ("FD-motion-lab", fd_motion, generated.video),
        ):
            interval = bootstrap_interval(statistic, samples, num_resamples=num_resamples)
            results[f"{name}-ci"] = [interval.low, interval.high]
    return results


def _distance_to(reference: FeatureStats, features: np.ndarray) -> float:
    other = FeatureStats.from_features(features)
    return frechet_distance(reference.mean, reference.cov, other.mean, other.cov).distance


# ----------------------------------------------------------------------------------------------------
# Training and caching


@dataclass(frozen=True)
class LabTraining:
    """The recipe (part of the cache key: change it and the classifier is retrained)."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    width: int = 16
    seed: int = 0


def train_lab_classifier(
    dataset, *, recipe: LabTraining = LabTraining(), device=None, progress: bool = True
) -> tuple[LabClassifier, dict]:
    """Train on ``dataset`` (items with ``"video"`` (F, 3, H, W) in [−1, 1] and ``"label"``).

    Each clip is played backwards with probability ½ and the direction head must tell which (arrow of
    time); the class head learns the labels of the forward clips. No flip augmentation: a mirrored
    pan-left is a pan-right. Returns (classifier in eval mode, training report).
    """
    num_classes = int(getattr(dataset, "num_classes", 0))
    if num_classes < 2:
        raise ValueError("the lab classifier needs a labelled dataset with .num_classes >= 2")
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    # Kept as uint8 (exact for the embedded data, which is stored as uint8): 4x less memory at 64 px.
    videos = ((_stack(dataset, range(len(dataset))) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    labels = torch.tensor([int(dataset[i]["label"]) for i in range(len(dataset))])
    model = LabClassifier(num_classes, recipe.width).to(device or "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=1e-4)
    steps = recipe.steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=steps)
    model.train()
    order = torch.empty(0, dtype=torch.long)
    for _ in tqdm(range(steps), desc="training lab classifier", disable=not progress, leave=False):
        if len(order) < recipe.batch_size:  # reshuffle once per epoch
            order = torch.cat([order, torch.randperm(len(videos), generator=generator)])
        idx, order = order[: recipe.batch_size], order[recipe.batch_size :]
        x, y = videos[idx].float() / 127.5 - 1, labels[idx]
        backwards = torch.rand(len(idx), generator=generator) < 0.5
        x[backwards] = x[backwards].flip(1)
        class_logits, direction_logits = model(x.to(next(model.parameters()).device))
        # The class loss only sees forward clips: a pan-left played backwards *is* a pan-right, so
        # labelling it pan-left would teach the class head nonsense.
        forward = ~backwards.to(class_logits.device)
        class_loss = F.cross_entropy(class_logits[forward], y.to(class_logits.device)[forward])
        loss = class_loss + F.cross_entropy(direction_logits, backwards.long().to(class_logits.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval().requires_grad_(False)
    report = {"train_class_accuracy": _accuracy(model, videos, labels), "train_clips": len(videos)}
    del videos
    return model, report


def lab_classifier(
    resolution: int,
    num_frames: int,
    *,
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    recipe: LabTraining = LabTraining(),
    device=None,
    progress: bool = True,
) -> LabClassifier:
    """The lab classifier for the embedded dataset at this resolution and clip length: cached, else trained.

    The cache file name holds the version, the resolution, the frame count and a fingerprint of the training
    data and recipe, so a changed dataset or recipe never reuses stale weights. Written atomically.
    """
    dataset = EmbeddedVideoDataset(root=root, resolution=resolution, split="train", num_frames=num_frames)
    cache = Path(cache_dir) if cache_dir is not None else Path(root or default_data_root()) / "cache"
    key = _fingerprint(dataset, recipe)
    path = cache / f"lab-classifier-v{LAB_CLASSIFIER_VERSION}-r{resolution}-f{num_frames}-{key}.safetensors"
    if path.is_file():
        model = load_lab_classifier(path, device=device)
        model.cache_path = path
        return model
    model, report = train_lab_classifier(dataset, recipe=recipe, device=device, progress=progress)
    meta = {
        "version": str(LAB_CLASSIFIER_VERSION),
        "num_classes": str(model.num_classes),
        "width": str(model.width),
        "resolution": str(resolution),
        "num_frames": str(num_frames),
        "report": json.dumps(report),
    }
    cache.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
    os.close(handle)
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp, metadata=meta)
        follow_umask(tmp)  # mkstemp and safetensors make it 0600; the cache is shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    model.cache_path = path
    return model


def cached_lab_features(
    classifier: LabClassifier, dataset, name: str, *, progress: bool = False
) -> LabFeatures:
    """``lab_features`` of a whole dataset split, cached beside the classifier's file.

    The reference features of the real train split depend only on the classifier and the data, yet
    every evaluation needs them; a sweep of many runs would otherwise recompute them each time.
    """
    path = getattr(classifier, "cache_path", None)
    if path is None:
        return lab_features(classifier, dataset, progress=progress)
    feature_path = Path(path).with_name(f"{Path(path).stem}-{name}-n{len(dataset)}-features.npz")
    if feature_path.is_file():
        with np.load(feature_path) as stored:
            return LabFeatures(stored["video"], stored["frame"], stored["probabilities"])
    features = lab_features(classifier, dataset, progress=progress)
    handle, tmp = tempfile.mkstemp(dir=feature_path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, video=features.video, frame=features.frame, probabilities=features.probabilities)
        follow_umask(tmp)  # mkstemp makes it 0600; the cache is shared
        os.replace(tmp, feature_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return features


def load_lab_classifier(path: str | os.PathLike, *, device=None) -> LabClassifier:
    """Load a cached classifier file written by ``lab_classifier``."""
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if meta.get("version") != str(LAB_CLASSIFIER_VERSION):
        raise ValueError(
            f"{path} is lab classifier version {meta.get('version')}, this code needs "
            f"{LAB_CLASSIFIER_VERSION}; delete the file to retrain"
        )
    model = LabClassifier(int(meta["num_classes"]), int(meta["width"]))
    model.load_state_dict(load_file(str(path)))
    return model.to(device or "cpu").eval().requires_grad_(False)


def _stack(dataset, indices) -> torch.Tensor:
    return torch.stack([torch.as_tensor(dataset[i]["video"], dtype=torch.float32) for i in indices])


@torch.no_grad()
def _accuracy(model: LabClassifier, videos: torch.Tensor, labels: torch.Tensor) -> float:
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(videos), 64):
        logits, _ = model((videos[start : start + 64].float() / 127.5 - 1).to(device))
        correct += int((logits.argmax(1).cpu() == labels[start : start + 64]).sum())
    return correct / len(videos)


def _fingerprint(dataset, recipe: LabTraining) -> str:
    digest = hashlib.sha1()
    digest.update(
        repr((len(dataset), int(dataset.num_classes), list(getattr(dataset, "class_names", [])))).encode()
    )
    digest.update(repr(recipe).encode())
    for i in {0, len(dataset) // 2, len(dataset) - 1}:
        digest.update(np.ascontiguousarray(np.asarray(dataset[i]["video"], dtype=np.float32)).tobytes())
    return digest.hexdigest()[:10]
