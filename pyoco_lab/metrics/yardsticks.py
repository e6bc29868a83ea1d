"""The frame and clip yardsticks, and the controls that prove each one sees what a person sees.

Every set of frames (an image model's samples, the frames of generated clips, a control) is compared with
the **training distribution**, as FID compares a generator with its training set: frames of train-split
clips (half ``A`` of the train clips, seeded). The real-vs-real row uses frames of the *other* half of the
train clips (``B``): same scenes, disjoint frames, so a perfect generator scores like it. Frames of the
held-out scenes (the test split) are a separate *generalisation* row: they measure how far unseen footage
is from the training scenes, not the floor.

Measures of a set (keys of the returned rows), each in its own module with its definition:

* ``KID-app`` (``kernel_distance``; Bińkowski et al. 2018) — the verdict distance, unbiased at small N;
* ``FD-app`` (``frechet``) — the same features' Fréchet distance, for readers used to FID (biased at small N);
* ``C2ST-frame`` / ``C2ST-clip`` (``two_sample``; Lopez-Paz & Oquab 2017) — held-out accuracy of a classifier
  real vs this set on raw pixels, 0.5 = indistinguishable;
* ``precision-app`` / ``recall-app`` (Kynkäänniemi et al. 2019), ``density-app`` / ``coverage-app``
  (Naeem et al. 2020) (``precision_recall``) — quality and diversity apart;
* ``NN-ratio`` / ``copy-fraction`` (``memorisation``) — copies of training frames: each sample's pixel
  distance to its nearest frame among every frame of 256 clips of half A, against the same for real frames
  of half B (a model that copies its training set at random lands half its copies there at distance 0);
* clips only: ``scene-held`` / ``cut-rate`` (``scene_consistency``) — does a clip keep one scene, or cut
  to another between neighbouring frames (its controls: spliced and flickering clips)?
* clips only: ``FD-motion-lab`` — Fréchet distance of the lab classifier's *motion* stream alone
  (``metrics.lab``): the motion half of FVD-lab, reported beside the content (``KID-app`` of the clips'
  frames) so a model that wins on motion while failing on content is seen as such.

The features are the appearance network's (``metrics.appearance``). A yardstick is used for verdicts only
if the controls (``frame_controls``, ``clip_controls``) rank every corruption worse than real with
intervals that do not overlap (``control_verdicts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pyoco_lab.data import EmbeddedVideoDataset
from pyoco_lab.metrics import corruptions, scene_consistency
from pyoco_lab.metrics.appearance import AppearanceNet, appearance_features, appearance_net, embed
from pyoco_lab.metrics.frechet import frechet_distance_from_features
from pyoco_lab.metrics.kernel_distance import kernel_distance
from pyoco_lab.metrics.memorisation import memorisation
from pyoco_lab.metrics.precision_recall import K_DENSITY_COVERAGE, density_coverage, precision_recall
from pyoco_lab.metrics.two_sample import MIN_ITEMS, accuracy_record, two_sample_test

# Bump when a measure, a control or the real sets change: cached real rows, controls and image-model
# quality then are measured again (each cache key holds it).
YARDSTICKS_VERSION = 1
# Which way is better for each measure, and the value of a perfect set (None: compared with the real row).
LOWER_IS_BETTER = {
    "KID-app": True,
    "FD-app": True,
    "C2ST-frame": True,
    "C2ST-clip": True,
    "FD-motion-lab": True,
    "scene-held": False,
    "precision-app": False,
    "recall-app": False,
    "density-app": False,
    "coverage-app": False,
}
# The measures that carry an interval (the others are point estimates: read them beside the real row).
WITH_INTERVAL = ("KID-app", "C2ST-frame", "C2ST-clip", "FD-motion-lab", "scene-held")
FRAME_MEASURES = (
    "KID-app",
    "FD-app",
    "C2ST-frame",
    "precision-app",
    "recall-app",
    "density-app",
    "coverage-app",
)
# Which clip controls (``metrics.controls.CONTROLS``) each clip measure must rank below real: a content
# measure is blind to the time axis by construction (frozen / shuffled / flicker keep real frames), a motion
# measure to content (motion on noise has exactly the real frame differences); the combined ones see both.
CONTENT_CONTROLS = ("blurred", "motion on noise")
TIME_CONTROLS = ("frozen", "shuffled", "flicker")
CLIP_CONTROL_TARGETS = {
    "KID-app": CONTENT_CONTROLS,
    "C2ST-frame": CONTENT_CONTROLS,
    "FD-motion-lab": TIME_CONTROLS,
    # a clip that cuts between scenes; frozen and shuffled clips show one scene (motion catches them), and
    # the scene measure's own splice control is in ``scene_consistency``
    "scene-held": ("flicker",),
    "C2ST-clip": CONTENT_CONTROLS + TIME_CONTROLS,
    "FVD-lab": CONTENT_CONTROLS + TIME_CONTROLS,
}
REAL_ROW = "real (other train clips)"
# Clips of half A whose every frame the memorisation check compares samples with (256 × 16 = 4,096 frames).
POOL_CLIPS = 256
HELD_OUT_ROW = "held-out scenes (test split)"
COPIES_ROW = "copies of training frames"


@dataclass(frozen=True)
class RealSets:
    """The real frames every set is measured against, and the real rows."""

    reference: torch.Tensor  # (M, 3, H, W) frames of train clips A: the training distribution
    pool: torch.Tensor  # (P, 3, H, W) every frame of up to POOL_CLIPS clips of A: what copies are sought in
    reference_features: np.ndarray  # (M, D) their appearance features (raw; ``embed`` makes the space)
    real: torch.Tensor  # frames (N, 3, H, W) or clips (N, F, 3, H, W) of train clips B: the real row
    held_out: torch.Tensor  # the same shape from the test split's clips: the generalisation row
    # every clip of A (A_clips, F, 3, H, W): the clip metrics' reference (FVD-lab, FD-motion-lab) and, its
    # first N, the clip two-sample test's real side; None for frame sets
    reference_clips: torch.Tensor | None
    # the scene (video identity) of each clip of ``real`` (the spliced control joins different ones); None
    # for frame sets
    real_scene_ids: np.ndarray | None = None
    reference_scene_ids: np.ndarray | None = None  # the same for ``reference_clips``


def real_sets(
    net: AppearanceNet,
    resolution: int,
    count: int,
    *,
    num_frames: int | None = None,
    reference_frames: int = 1024,
    root=None,
    seed: int = 0,
) -> RealSets:
    """Real sets of ``count`` frames (``num_frames`` None) or ``count`` clips of ``num_frames`` frames.

    The train clips are split in two halves by a seeded permutation: A gives ``reference_frames`` frames
    (and, for clips, all its clips as the clip reference), B the real row. Frames are drawn one per clip
    where the half has enough clips, so they are as independent as the data allows.
    """
    train = EmbeddedVideoDataset(root, resolution, "train", build_if_missing=True)
    test = EmbeddedVideoDataset(root, resolution, "test", build_if_missing=True)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)
    half_a, half_b = order[::2], order[1::2]
    frames_from = num_frames or train.num_frames
    reference = _random_frames(train, half_a, reference_frames, frames_from, generator)
    if num_frames is None:
        real = _random_frames(train, half_b, count, frames_from, generator)
        held_out = _random_frames(
            test, torch.randperm(len(test), generator=generator), count, frames_from, generator
        )
        reference_clips = real_scene_ids = reference_scene_ids = None
    else:
        real = _clips(train, half_b[:count], num_frames)
        real_scene_ids = train.video_ids[half_b[:count].numpy()]
        held_out = _clips(test, torch.randperm(len(test), generator=generator)[:count], num_frames)
        reference_order = half_a[torch.randperm(len(half_a), generator=generator)]
        reference_clips = _clips(train, reference_order, num_frames)
        reference_scene_ids = train.video_ids[reference_order.numpy()]
    pool_clips = half_a[:POOL_CLIPS].sort().values
    pool = torch.cat([train[int(i)]["video"] for i in pool_clips])
    return RealSets(
        reference,
        pool,
        appearance_features(net, reference),
        real,
        held_out,
        reference_clips,
        real_scene_ids,
        reference_scene_ids,
    )


def _clips(dataset, indices: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The clips at ``indices``, in that order (a seeded order: any prefix is a random subset)."""
    return torch.stack([dataset[int(i)]["video"][:num_frames] for i in indices])


def _random_frames(dataset, clip_indices, count: int, frames_from: int, generator) -> torch.Tensor:
    """``count`` frames: clip i of a cycling order of ``clip_indices``, a random frame of its first ones."""
    picks = clip_indices[torch.arange(count) % len(clip_indices)]
    frame = torch.randint(0, frames_from, (count,), generator=generator)
    return torch.stack([dataset[int(c)]["video"][int(f)] for c, f in zip(picks, frame, strict=True)])


def frame_scores(sets: RealSets, net: AppearanceNet, items: torch.Tensor, *, seed: int = 0) -> dict:
    """Every frame measure of ``items`` — frames (N, 3, H, W) or clips (N, F, 3, H, W), whose frames are
    pooled — against the training distribution; intervals resample whole clips."""
    group = 1 if items.ndim == 4 else int(items.shape[1])
    frames = _frames(items)
    raw = appearance_features(net, frames)
    reference_features, features = embed(sets.reference_features, raw, block_sizes=net.block_sizes)
    kid = kernel_distance(reference_features, features, groups=group, seed=seed)
    size = min(len(features), len(reference_features))
    scores = {
        "KID-app": kid["value"],
        "KID-app-ci": kid["ci95"],
        "FD-app": frechet_distance_from_features(reference_features, features).distance,
        **_memorisation_record(memorisation(sets.pool, _frames(sets.real), frames)),
    }
    # At a smoke test's N (a few clips) the sample-based measures cannot run: they are left out, not faked.
    if size // group >= MIN_ITEMS // 2 and size >= MIN_ITEMS:
        reference_frames = _grouped_like(sets.reference[:size], group)
        c2st = two_sample_test(reference_frames, frames[:size], group_size=group, seed=seed)
        scores.update({"C2ST-frame": c2st["accuracy"], "C2ST-frame-ci": c2st["ci95"]})
    if size > K_DENSITY_COVERAGE:
        scores.update(
            {f"{k}-app": v for k, v in precision_recall(reference_features[:size], features[:size]).items()}
        )
        scores.update(
            {f"{k}-app": v for k, v in density_coverage(reference_features[:size], features[:size]).items()}
        )
    return scores


def _grouped_like(reference_frames: torch.Tensor, group: int) -> torch.Tensor:
    """Reference frames are independent draws; the grouped split only needs equal counts."""
    return reference_frames[: len(reference_frames) // group * group]


def _frames(items: torch.Tensor) -> torch.Tensor:
    return items if items.ndim == 4 else items.flatten(0, 1)


def _memorisation_record(result: dict) -> dict:
    return {"NN-ratio": result["nn_ratio"], "copy-fraction": result["copy_fraction"]}


def clip_two_sample(sets: RealSets, clips: torch.Tensor, *, seed: int = 0) -> dict:
    """``C2ST-clip``: the two-sample test on whole clips (content and motion) against train clips A."""
    if sets.reference_clips is None:
        raise ValueError("these real sets hold frames; build them with num_frames for clips")
    size = min(len(clips), len(sets.reference_clips))
    if size < MIN_ITEMS:
        return {}  # too few clips for a held-out half (a smoke test's N)
    record = accuracy_record(two_sample_test(sets.reference_clips[:size], clips[:size], seed=seed))
    return {"C2ST-clip": record["value"], "C2ST-clip-ci": record["ci95"]}


def scene_reference(sets: RealSets, net: AppearanceNet) -> scene_consistency.SceneReference:
    """The scene-consistency threshold of these real sets' reference clips (train half A)."""
    if sets.reference_clips is None:
        raise ValueError("these real sets hold frames; build them with num_frames for clips")
    return scene_consistency.scene_reference(
        net, sets.reference_features, sets.reference_clips, sets.reference_scene_ids
    )


def clip_scene_judge(
    resolution: int, num_frames: int, *, num_clips: int = 128, root=None, seed: int = 0
) -> tuple[AppearanceNet, scene_consistency.SceneReference]:
    """What one clip's cuts are found with (the explorer's scene check): the appearance network of the
    embedded data at ``resolution`` and the cut threshold τ of ``num_clips`` real reference clips of
    ``num_frames`` frames (train half A) -- the same τ a sweep of ``num_clips`` clips uses."""
    net = appearance_net(resolution, root=root, device="cpu", progress=False)
    sets = real_sets(net, resolution, num_clips, num_frames=num_frames, root=root, seed=seed)
    return net, scene_reference(sets, net)


def clip_scores(
    sets: RealSets,
    net: AppearanceNet,
    clips: torch.Tensor,
    *,
    seed: int = 0,
    scene: scene_consistency.SceneReference | None = None,
) -> dict:
    """The clip yardstick's content part (every frame measure of the clips' frames), C2ST-clip and scene
    consistency (``scene`` from :func:`scene_reference`, computed here when not given)."""
    scene = scene or scene_reference(sets, net)
    return {
        **frame_scores(sets, net, clips, seed=seed),
        **clip_two_sample(sets, clips, seed=seed),
        **scene_consistency.scene_scores(net, scene, clips, seed=seed),
    }


def frame_controls(sets: RealSets, net: AppearanceNet, *, seed: int = 0) -> dict[str, dict]:
    """{row: frame scores} for the real row, the held-out row, each corruption of the real row, and copies
    of reference frames (which every distance loves and only the memorisation check must catch)."""
    real = _frames(sets.real)
    rows = {REAL_ROW: sets.real, HELD_OUT_ROW: sets.held_out}
    for kind in corruptions.FRAME_CORRUPTIONS:
        rows[kind] = corruptions.corrupt_frames(real, kind, seed=seed)
        if sets.real.ndim == 5:
            rows[kind] = rows[kind].reshape(sets.real.shape)
    rows[COPIES_ROW] = _copies(sets, seed)
    return {name: frame_scores(sets, net, items, seed=seed) for name, items in rows.items()}


def _copies(sets: RealSets, seed: int) -> torch.Tensor:
    """Frames copied from the training clips the memorisation pool holds (a model that copies)."""
    picks = torch.randperm(len(sets.pool), generator=torch.Generator().manual_seed(seed + 1))
    frames = sets.pool[picks[: len(_frames(sets.real))]]
    return frames.reshape(sets.real.shape) if sets.real.ndim == 5 else frames


def control_verdicts(table: dict[str, dict], measures=WITH_INTERVAL) -> dict[str, dict]:
    """{measure: {"passes": bool, "failures": [rows ranked not clearly worse than real]}}.

    A corruption is "clearly worse" when its interval lies entirely on the worse side of the real row's
    interval (no overlap: the unpaired verdict rule of ``stats``). The held-out row is generalisation, not
    a corruption, and the copies row is the memorisation check's control: neither enters here.
    """
    real = table[REAL_ROW]
    out = {}
    for measure in measures:
        if measure not in real:
            continue
        lower = LOWER_IS_BETTER[measure]
        low_r, high_r = real[f"{measure}-ci"]
        failures = []
        for name, row in table.items():
            if name in (REAL_ROW, HELD_OUT_ROW, COPIES_ROW) or measure not in row:
                continue
            low, high = row[f"{measure}-ci"]
            if not (low > high_r if lower else high < low_r):
                failures.append(name)
        out[measure] = {"passes": not failures, "failures": failures}
    copies = table.get(COPIES_ROW)
    if copies is not None:
        # A set of copies must be flagged: more of it below real's 5% quantile than real's own 5%, by far.
        flagged = copies["copy-fraction"] > 0.5 and real["copy-fraction"] < 0.2
        out["copy-fraction"] = {"passes": bool(flagged), "failures": [] if flagged else [COPIES_ROW]}
    return out
