"""UCF-101 (the paper's small-scale data set) read through decord, for users who have it.

Protocol (Ho et al., as used by the paper): 16 frames from a random start at a configurable frame
stride (StyleGAN-V and TATS take 16 consecutive frames at native fps), short side resized to the
resolution, centre crop, values in [-1, 1]. The frames view draws one random frame per item (image
pre-training, A.3).

Splits: ``train`` / ``test`` are ``trainlist0N`` / ``testlist0N`` of fold N; ``all`` is both lists of
the fold, i.e. all 13,320 videos (the paper's "UCF-101 dataset contains 13,320 videos"). With ``seed``
set, every clip start is a pure function of (seed, the video's relative path): the same real clips
whatever else is in the split, so an FVD reference set can be rebuilt and recorded (``eval.json``
stores the seed and the split).

Expected layout (``root`` defaults to the lab's data folder)::

    root/UCF-101/<ClassName>/v_<ClassName>_gXX_cYY.avi
    root/ucfTrainTestlist/{classInd,trainlist01..03,testlist01..03}.txt

Broken videos (unreadable, zero-length, truncated, or shorter than a clip) never stop a run: the
item is replaced by another video, a warning names the file once, and ``dataset.skipped`` counts
them (``skipped_summary()`` prints the tally).
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from pyoco_lab.data.embedded import default_data_root
from pyoco_lab.data.video_io import VideoFile, default_backend, frame_count
from pyoco_lab.progress import tqdm

__all__ = [
    "UCF101_URL",
    "UCF101Clips",
    "UCF101Frames",
    "VideoReadError",
    "clip_seed",
    "make_dataloader",
    "read_video_frames",
    "resize_center_crop",
    "resolve_ucf101",
]

UCF101_URL = "https://www.crcv.ucf.edu/data/UCF101.php"
_HOW_TO_GET = (
    f"download UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip from {UCF101_URL}, then unpack "
    "them so that <root>/UCF-101/<ClassName>/*.avi and <root>/ucfTrainTestlist/classInd.txt exist "
    "(root: --data-root, $PYOCO_DATA, or the repository's data/ folder)"
)


class VideoReadError(RuntimeError):
    """A video that cannot give the frames asked for (corrupt, empty, truncated or too short)."""

    def __init__(self, path, reason: str, detail: str = ""):
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")
        self.path, self.reason = str(path), reason


def resolve_ucf101(root: str | os.PathLike | None = None, split_dir=None) -> tuple[Path, Path]:
    """(video folder, split-file folder), looking in the usual places under ``root``."""
    root = Path(root if root is not None else default_data_root()).expanduser()
    video_candidates = [root / "UCF-101", root / "ucf101" / "UCF-101", root / "UCF101" / "UCF-101", root]
    video_dir = next((d for d in video_candidates if d.is_dir() and any(d.glob("*/*.avi"))), None)
    if video_dir is None:
        raise FileNotFoundError(f"no UCF-101 videos (*/*.avi) found under {root}; {_HOW_TO_GET}")
    if split_dir is not None:
        split_candidates = [Path(split_dir).expanduser()]
    else:
        split_candidates = [
            root / "ucfTrainTestlist",
            video_dir.parent / "ucfTrainTestlist",
            video_dir / "ucfTrainTestlist",
            root / "ucf101" / "ucfTrainTestlist",
        ]
    found = next((d for d in split_candidates if (d / "classInd.txt").is_file()), None)
    if found is None:
        looked = ", ".join(str(d) for d in dict.fromkeys(split_candidates))
        raise FileNotFoundError(f"UCF-101 split files (classInd.txt) not found in {looked}; {_HOW_TO_GET}")
    return video_dir, found


def _read_split(video_dir: Path, split_dir: Path, split: str, fold: int):
    """[(relative path, label)], class names, in classInd order (labels 0-based)."""
    if fold not in (1, 2, 3):
        raise ValueError(f"UCF-101 has folds 1, 2 and 3, got fold={fold}")
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    classes = {}
    for line in (split_dir / "classInd.txt").read_text().splitlines():
        if line.strip():
            number, name = line.split()
            classes[name] = int(number) - 1
    class_names = tuple(sorted(classes, key=classes.get))
    folded = {name.lower(): index for name, index in classes.items()}
    entries = []
    for part in ("train", "test") if split == "all" else (split,):
        list_file = split_dir / f"{part}list0{fold}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(f"UCF-101 split file {list_file} is missing; {_HOW_TO_GET}")
        for line in list_file.read_text().splitlines():
            if not line.strip():
                continue
            relpath = line.split()[0]
            class_dir = relpath.replace("\\", "/").split("/")[0]
            # testlists carry no label: the class is the folder (classInd spells some names differently
            # in case, e.g. HandstandPushups vs HandStandPushups, hence the case-insensitive lookup)
            label = folded.get(class_dir.lower())
            if label is None:
                raise ValueError(f"{list_file}: class folder {class_dir!r} is not in classInd.txt")
            entries.append((relpath, label))
    return entries, class_names


def read_video_frames(
    path, frame_indices=None, *, num_frames=None, stride: int = 1, generator=None, backend: str | None = None
):
    """Frames (F, H, W, 3) uint8 of a video (decord, or PyAV without it), plus the frame indices read.

    Either pass ``frame_indices``, or ``num_frames`` (and ``stride``) to read a clip from a random
    start drawn with ``generator`` (torch's global RNG when None). Raises VideoReadError with a
    reason ("unreadable", "empty", "too short", "truncated") instead of returning garbage. ``backend``:
    decord or pyav (:func:`~pyoco_lab.data.video_io.default_backend` when None).
    """
    path = str(path)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise VideoReadError(path, "empty" if os.path.isfile(path) else "missing", "no bytes to decode")
    try:
        reader = VideoFile(path, backend=backend)
        length = len(reader)
    except Exception as error:  # decord: DECORDError/RuntimeError; PyAV: av.error.* for undecodable files
        raise VideoReadError(path, "unreadable", str(error).splitlines()[0][:200]) from None
    if length == 0:
        raise VideoReadError(path, "empty", "0 frames")
    if frame_indices is None:
        span = (num_frames - 1) * stride + 1
        if length < span:
            raise VideoReadError(
                path, "too short", f"{length} frames < {span} needed ({num_frames} x stride {stride})"
            )
        start = int(torch.randint(0, length - span + 1, (1,), generator=generator))
        frame_indices = list(range(start, start + span, stride))
    try:
        frames = reader.frames(list(frame_indices))
    except Exception as error:
        # the container index promised frames that the stream does not hold
        raise VideoReadError(path, "truncated", str(error).splitlines()[0][:200]) from None
    if frames.shape[0] != len(frame_indices) or frames.ndim != 4 or frames.size == 0:
        raise VideoReadError(path, "truncated", f"got {frames.shape[0]} of {len(frame_indices)} frames")
    return frames, list(frame_indices)


def resize_center_crop(frames: np.ndarray, resolution: int) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, r, r) float32 in [-1, 1]: short side to r (antialiased), centre crop."""
    video = rearrange(torch.from_numpy(np.ascontiguousarray(frames)), "f h w c -> f c h w").float() / 255
    height, width = video.shape[-2:]
    scale = resolution / min(height, width)
    size = (max(resolution, round(height * scale)), max(resolution, round(width * scale)))
    video = F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    video = video[:, :, top : top + resolution, left : left + resolution]
    return video.clamp(0, 1) * 2 - 1


def clip_seed(seed: int, path: str | os.PathLike, video_dir: str | os.PathLike | None = None) -> int:
    """The seed of one video's clip start: a fixed mix of ``seed`` and the path (relative to ``video_dir``).

    crc32, not Python's salted ``hash``, so it is the same in every process and on every machine.
    """
    path = Path(path)
    if video_dir is not None:
        try:
            path = path.relative_to(video_dir)
        except ValueError:
            pass
    return (int(seed) * 1_000_003 + zlib.crc32(path.as_posix().encode())) % (2**63 - 1)


class _UCF101Base(torch.utils.data.Dataset):
    max_retries = 32

    def __init__(self, root, split, fold, resolution, split_dir, validate):
        self.video_dir, self.split_dir = resolve_ucf101(root, split_dir)
        entries, self.class_names = _read_split(self.video_dir, self.split_dir, split, fold)
        self.num_classes = len(self.class_names)
        self.split, self.fold, self.resolution = split, fold, int(resolution)
        # chosen once, here: DataLoader workers (started from a fork server) read the same way
        self.backend = default_backend()
        self.skipped: dict[str, str] = {}  # path -> reason, for this process
        present = []
        for relpath, label in entries:
            path = self.video_dir / relpath
            if path.is_file():
                present.append((path, label))
            else:
                self.skipped[str(path)] = "missing"
        if self.skipped:
            warnings.warn(
                f"UCF-101: {len(self.skipped)} videos listed in {split}list0{fold} are missing under "
                f"{self.video_dir} (e.g. {next(iter(self.skipped))}); they are skipped",
                stacklevel=3,
            )
        if not present:
            raise FileNotFoundError(f"none of the videos of the {split} split exist under {self.video_dir}")
        self.paths = [p for p, _ in present]
        self.labels = np.array([label for _, label in present], dtype=np.int64)
        self._bad: set[int] = set()
        if validate:
            self.validate()

    def __len__(self) -> int:
        return len(self.paths)

    def _skip(self, index: int, error: VideoReadError) -> None:
        self._bad.add(index)
        if error.path not in self.skipped:
            self.skipped[error.path] = error.reason
            warnings.warn(f"UCF-101: skipping {error} (replaced by another video)", stacklevel=3)

    def _min_frames(self) -> int:
        return 1

    def validate(self, progress: bool = True) -> dict[str, int]:
        """Open every video once; drop the unusable ones up front. Returns the skipped tally."""
        keep = []
        for index, path in enumerate(tqdm(self.paths, desc="checking videos", disable=not progress)):
            try:
                if os.path.getsize(path) == 0:
                    raise VideoReadError(path, "empty", "no bytes to decode")
                try:
                    length = frame_count(path, backend=self.backend)
                except Exception as error:
                    raise VideoReadError(path, "unreadable", str(error).splitlines()[0][:200]) from None
                if length < self._min_frames():
                    raise VideoReadError(path, "too short", f"{length} frames < {self._min_frames()}")
                keep.append(index)
            except VideoReadError as error:
                self._skip(index, error)
        self.paths = [self.paths[i] for i in keep]
        self.labels = self.labels[keep]
        self._bad = set()
        if not self.paths:
            raise FileNotFoundError(f"no readable video in the {self.split} split under {self.video_dir}")
        return self.skipped_summary()

    def skipped_summary(self) -> dict[str, int]:
        """{reason: count} of the videos skipped so far in this process."""
        return dict(Counter(self.skipped.values()))

    def _item(self, index: int) -> dict:
        raise NotImplementedError

    def _generator(self, index: int) -> torch.Generator | None:
        """None (torch's global RNG) without a seed, else a generator seeded by (seed, video path)."""
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(clip_seed(self.seed, self.paths[index], self.video_dir))

    def __getitem__(self, index: int) -> dict:
        # A bad video is replaced by the next good one: a training step never sees garbage, and the
        # replacement is a pure function of the index so seeded runs stay reproducible.
        count = len(self)
        for attempt in range(min(self.max_retries, count)):
            candidate = (int(index) + attempt) % count
            if candidate in self._bad:
                continue
            try:
                return self._item(candidate)
            except VideoReadError as error:
                self._skip(candidate, error)
        raise RuntimeError(
            f"UCF-101: {min(self.max_retries, count)} videos in a row near index {index} could not be read "
            f"({self.skipped_summary()}); check the files under {self.video_dir}"
        )


class UCF101Clips(_UCF101Base):
    """16-frame UCF-101 clips: {"video": (F, 3, r, r) in [-1, 1], "label", "class_name", "path"}.

    The clip start is random (torch's global RNG, which the trainer and DataLoader workers seed), or
    a pure function of (seed, the video's path relative to the UCF-101 folder) when ``seed`` is given:
    fixed evaluation clips, the same whichever split or subset the video is read from.
    """

    def __init__(
        self,
        root=None,
        split: str = "train",
        fold: int = 1,
        num_frames: int = 16,
        resolution: int = 64,
        frame_stride: int = 1,
        split_dir=None,
        seed: int | None = None,
        validate: bool = False,
    ):
        if num_frames < 1 or frame_stride < 1 or resolution < 1:
            raise ValueError("num_frames, frame_stride and resolution must all be >= 1")
        self.num_frames, self.frame_stride, self.seed = int(num_frames), int(frame_stride), seed
        super().__init__(root, split, fold, resolution, split_dir, validate)

    def _min_frames(self) -> int:
        return (self.num_frames - 1) * self.frame_stride + 1

    def _item(self, index: int) -> dict:
        frames, _ = read_video_frames(
            self.paths[index],
            num_frames=self.num_frames,
            stride=self.frame_stride,
            generator=self._generator(index),
            backend=self.backend,
        )
        label = int(self.labels[index])
        return {
            "video": resize_center_crop(frames, self.resolution),
            "label": label,
            "class_name": self.class_names[label],
            "path": str(self.paths[index]),
        }


class UCF101Frames(_UCF101Base):
    """Random single frames of UCF-101 videos (image pre-training, A.3): {"image": (3, r, r), ...}."""

    def __init__(
        self,
        root=None,
        split: str = "train",
        fold: int = 1,
        resolution: int = 64,
        split_dir=None,
        seed: int | None = None,
        validate: bool = False,
    ):
        self.seed = seed
        super().__init__(root, split, fold, resolution, split_dir, validate)

    def _item(self, index: int) -> dict:
        frames, _ = read_video_frames(
            self.paths[index], num_frames=1, generator=self._generator(index), backend=self.backend
        )
        label = int(self.labels[index])
        return {
            "image": resize_center_crop(frames, self.resolution)[0],
            "label": label,
            "class_name": self.class_names[label],
            "path": str(self.paths[index]),
        }


def make_dataloader(
    dataset,
    batch_size: int,
    num_workers: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
) -> torch.utils.data.DataLoader:
    """A DataLoader whose shuffling and per-worker RNGs follow ``seed``; workers stay alive between epochs.

    Workers start from a fork server, not a fork of this process: video decoders (FFmpeg under PyAV and
    decord) keep native thread pools and locks, and a fork taken while one is held hangs the worker with
    no error. The dataset is pickled to each worker once (a UCF-101 dataset is a list of paths)."""
    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_seed_worker,
        prefetch_factor=4 if num_workers > 0 else None,
        multiprocessing_context="forkserver" if num_workers > 0 else None,
    )


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker's torch and `random` from the loader's generator; numpy is not seeded,
    # so derive it from the same per-worker seed.
    np.random.seed(torch.initial_seed() % 2**32)
