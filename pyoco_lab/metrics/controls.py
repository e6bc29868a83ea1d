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

:func:`pyoco_lab.evaluation.controls.evaluate_controls` scores them with exactly what an evaluation
gives a generated set (temporal statistics; the lab metrics and the yardsticks against the same reference),
one evaluation per seed, cached.
"""

from __future__ import annotations

import torch

from pyoco_lab.metrics import corruptions

CONTROLS = {
    "real": "held-out real clips (the floor)",
    "frozen": "frame 0 repeated",
    "shuffled": "frames of each clip in random order",
    "flicker": "frame t from a different clip for every t",
    "blurred": "every frame 4x4-blurred: coarse real motion, no detail",
    "motion on noise": "a noise image plus the real clip's change since frame 0: real motion, no content",
}


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
