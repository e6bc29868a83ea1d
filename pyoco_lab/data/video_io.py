"""Reading frames of a video file: decord where it has a wheel, PyAV (FFmpeg) where it does not.

decord is the primary reader (fast random access, what the UCF-101 pipelines of the paper's era use). It has
no wheels for some platforms (ARM64 Linux, Apple silicon), so when it cannot be imported -- or when
``PYOCO_VIDEO_BACKEND=pyav`` asks for it -- the same calls go through PyAV, which is a dependency anyway.
Both index frames in presentation order from 0, so ``frames(path, [0, 5, 9])`` means the same frames with
either backend; pixel values may differ by a few levels (each decoder converts YUV to RGB its own way).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import av
import numpy as np

try:  # decord has no wheel on some platforms: PyAV reads the same frames there
    import decord
except ImportError:  # pragma: no cover - exercised on platforms without a decord wheel
    decord = None

BACKENDS = ("decord", "pyav")


def default_backend() -> str:
    """``$PYOCO_VIDEO_BACKEND`` if set, else decord when importable, else PyAV."""
    chosen = os.environ.get("PYOCO_VIDEO_BACKEND")
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(f"PYOCO_VIDEO_BACKEND={chosen!r}; choose one of {', '.join(BACKENDS)}")
        if chosen == "decord" and decord is None:
            raise ValueError("PYOCO_VIDEO_BACKEND=decord but decord is not installed (no wheel here?)")
        return chosen
    return "decord" if decord is not None else "pyav"


class VideoFile:
    """One video file: ``len(video)`` frames, ``video.size`` = (height, width) of what it returns, and
    ``video.frames(indices)`` -> uint8 (F, H, W, 3). ``width``/``height`` resize while decoding."""

    def __init__(
        self, path, *, width: int | None = None, height: int | None = None, backend: str | None = None
    ):
        self.path, self.backend = str(path), backend or default_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown video backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        self.width, self.height = width, height
        self._decoded: np.ndarray | None = None
        if self.backend == "decord":
            if width and height:
                self._reader = decord.VideoReader(self.path, width=width, height=height, num_threads=1)
            else:
                self._reader = decord.VideoReader(self.path, num_threads=1)
            self._length = len(self._reader)
            self.size = tuple(self._reader[0].shape[:2]) if self._length else (0, 0)
        else:
            self._decoded = _decode_all(self.path, width, height)
            self._length = len(self._decoded)
            self.size = tuple(self._decoded.shape[1:3]) if self._length else (0, 0)

    def __len__(self) -> int:
        return self._length

    def frames(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (len(indices), H, W, 3); an index past the end raises IndexError."""
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < self._length]
        if bad:
            raise IndexError(f"{self.path}: frame(s) {bad[:5]} outside 0..{self._length - 1}")
        if self.backend == "decord":
            batch = self._reader.get_batch(indices)
            return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
        return self._decoded[indices]


def _decode_all(path: str, width: int | None, height: int | None) -> np.ndarray:
    """Every frame of the first video stream, in presentation order, as uint8 RGB (T, H, W, 3)."""
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        # One decoding thread, as decord's num_threads=1: FFmpeg's slice-thread pool (PyAV's default,
        # one thread a core) can be left locked in a DataLoader worker forked from a process that decoded
        # before -- a hang with no error (seen once in CI in the broken-videos test).
        stream.codec_context.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        frames = [
            frame.to_ndarray(format="rgb24", width=width, height=height)
            if width and height
            else frame.to_ndarray(format="rgb24")
            for frame in container.decode(stream)
        ]
    if not frames:
        return np.zeros((0, height or 0, width or 0, 3), dtype=np.uint8)
    return np.stack(frames)


def frame_count(path, *, backend: str | None = None) -> int:
    """Number of frames a video file really yields (PyAV decodes them all: a container's recorded count
    can promise frames a truncated stream does not hold)."""
    return len(VideoFile(path, backend=backend))


def read_frames(
    path, *, start: int = 0, stop: int | None = None, stride: int = 1, max_frames: int | None = None
) -> tuple[np.ndarray, list[int]]:
    """uint8 frames (F, H, W, 3) of ``path`` at ``range(start, stop, stride)`` (at most ``max_frames``),
    and the indices read. Bad files and empty ranges raise ValueError naming the file and the fix."""
    if stride < 1 or start < 0 or (max_frames is not None and max_frames < 1):
        raise ValueError(
            f"need start >= 0, stride >= 1 and max_frames >= 1, got {start}, {stride}, {max_frames}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video {path} not found")
    try:
        video = VideoFile(path)
    except Exception as error:  # decord: DECORDError/RuntimeError; PyAV: av.error.*
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(f"{path} is not a video this machine can decode ({reason})") from None
    stop = len(video) if stop is None else min(stop, len(video))
    indices = list(range(start, stop, stride))[:max_frames]
    if len(indices) < 2:
        raise ValueError(
            f"{path}: {len(video)} frames, so --start {start} --stop {stop} --stride {stride} selects "
            f"{len(indices)} frame(s); at least 2 are needed to compare frames"
        )
    return video.frames(indices), indices
