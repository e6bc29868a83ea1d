"""The object-motion set: real cut-out objects moving over real photographs, each clip stored with its
exact optical flow (issue #40). A data version beside the embedded dataset v1, which committed results
keep using: ``<data root>/embedded/objects-v1/``.

What a clip is (:mod:`pyoco_lab.data.objects`): one of the lab's photographs filmed by the camera model,
with one to three photographed cut-outs (Tux Paint's stamps, or a user's folder) moving over it and
occluding one another. **Identity** is the object and the background: ``held_out_objects`` cut-outs and
the photographs the embedded dataset v1 holds out (:func:`~pyoco_lab.data.embedded.held_out_photos`)
appear only in held-out ("test") clips, the rest only in training clips, so held-out clips show objects
*and* scenes that no model trained on either data version has seen. **Label**: the
category of the object in front (Tux Paint's folders: animals, food, plants, ...), usable for
class-conditional runs as UCF-101's 101 classes are.

Files: ``clips_<r>.npy`` uint8 (N, 16, 3, r, r); ``flow_<r>.npy`` float16 (N, 15, 2, r, r), the forward
flow of frame t to t + 1 in pixels at that size (x right, y down); ``index.json`` (per clip: objects,
background, split, label, camera and object motions; per cut-out and background: source, split,
licence); ``manifest.json`` (written last: parameters, counts, licences, build time, every file's size
and sha256). Deterministic: every clip has its own seeded generator; the parameters' hash includes the
list of cut-outs, so another folder is another build.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pyoco_lab.data.embedded import (
    NUM_FRAMES,
    default_data_root,
    file_record,
    held_out_photos,
    prepare_photo,
    to_unit_range,
)
from pyoco_lab.data.objects import (
    TUXPAINT_LICENCE,
    TUXPAINT_STAMPS,
    CutOut,
    find_cutouts,
    load_cutout,
    plan_object_scene,
)
from pyoco_lab.data.sources import PHOTOS
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json
from pyoco_lab.progress import tqdm

__all__ = [
    "OBJECTS_VERSION",
    "ObjectBuildConfig",
    "ObjectClipsDataset",
    "build_object_dataset",
    "clips_across_categories",
    "load_object_manifest",
    "objects_dir",
    "plan_object_clips",
]

OBJECTS_VERSION = "objects-v1"


def objects_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root if root is not None else default_data_root()) / "embedded" / OBJECTS_VERSION


@dataclass
class ObjectBuildConfig:
    """Everything that decides the bytes of the build (hashed into the manifest, with the cut-outs)."""

    seed: int = 0
    appearances_per_object: int = 8  # clips each cut-out appears in (in front or behind)
    max_objects_per_clip: int = 3
    held_out_objects: int = 60
    cutout_side: int = 160  # cut-outs are resized to this square before filming
    photo_short_side: int = 256
    render_size: int = 128
    max_clips: int | None = None  # cap per split, for quick test builds

    def digest(self, library: Sequence[CutOut]) -> str:
        cutouts = [(c.relpath, c.kind, c.opaque_pixels) for c in library]
        return json_digest({**asdict(self), "cutouts": cutouts}, 16)


def _split(count: int, held_out: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the ``held_out`` items of ``count`` (a seeded permutation)."""
    mask = np.zeros(count, dtype=bool)
    mask[rng.permutation(count)[:held_out]] = True
    return mask


def plan_object_clips(cutouts: Sequence[CutOut], config: ObjectBuildConfig) -> dict:
    """The build's plan: which cut-outs and backgrounds are held out, and each clip's objects (back
    to front), background and label. Only usable cut-outs (photographs, large enough) are planned."""
    usable = sorted((c for c in cutouts if c.usable), key=lambda c: c.relpath)
    need = config.held_out_objects + 2 * config.max_objects_per_clip
    if len(usable) < need:
        raise ValueError(
            f"{len(usable)} usable photographed cut-outs; the split needs at least {need} "
            f"({config.held_out_objects} held out and enough to train on)"
        )
    rng = np.random.default_rng([config.seed, 104729])
    object_held = _split(len(usable), config.held_out_objects, rng)
    background_held = np.array([p.name in held_out_photos() for p in PHOTOS])  # v1's: unseen by any model
    class_names = sorted({c.category for c in usable})
    clips = []
    for split, held in (("train", False), ("test", True)):
        members = np.flatnonzero(object_held == held)
        backgrounds = [PHOTOS[i].name for i in np.flatnonzero(background_held == held)]
        mean_objects = (1 + config.max_objects_per_clip) / 2
        count = math.ceil(len(members) * config.appearances_per_object / mean_objects)
        count = min(count, config.max_clips) if config.max_clips is not None else count
        pool: list[int] = []  # shuffled rounds over the members: every cut-out appears about equally
        for _ in range(count):
            k = int(rng.integers(1, config.max_objects_per_clip + 1))
            while len(pool) < k:
                pool += [int(i) for i in rng.permutation(members)]
            chosen, pool = pool[:k], pool[k:]
            if len(set(chosen)) < k:  # a round boundary repeated one: draw the rest afresh
                chosen = [int(i) for i in rng.choice(members, k, replace=False)]
            clips.append(
                {
                    "objects": chosen,
                    "background": backgrounds[int(rng.integers(len(backgrounds)))],
                    "split": split,
                    "label": class_names.index(usable[chosen[-1]].category),
                }
            )
    return {
        "cutouts": usable,
        "object_split": ["test" if h else "train" for h in object_held],
        "background_split": {
            p.name: "test" if h else "train" for p, h in zip(PHOTOS, background_held, strict=True)
        },
        "class_names": class_names,
        "clips": clips,
    }


def _cutout_licence(folder: Path) -> str:
    if folder.resolve() == TUXPAINT_STAMPS.resolve():
        return TUXPAINT_LICENCE
    notes = sorted(p.name for p in folder.glob("LICEN[CS]E*")) + sorted(
        p.name for p in folder.glob("COPYING*")
    )
    return (
        f"the user's own cut-outs ({folder}; see {notes[0]})"
        if notes
        else f"the user's own cut-outs ({folder})"
    )


def load_object_manifest(root: str | os.PathLike | None = None) -> dict | None:
    """The finished object set's manifest, or None when there is none under ``root``."""
    path = objects_dir(root) / "manifest.json"
    return read_json(path, "object-motion set manifest") if path.is_file() else None


def _is_complete(manifest: dict, directory: Path, resolutions: Sequence[int]) -> bool:
    files = manifest.get("files", {})
    wanted = ["index.json", *(f"{kind}_{r}.npy" for r in resolutions for kind in ("clips", "flow"))]
    return all(
        name in files
        and (directory / name).is_file()
        and (directory / name).stat().st_size == files[name]["bytes"]
        for name in wanted
    )


def build_object_dataset(
    root: str | os.PathLike | None = None,
    resolutions: Sequence[int] = (32,),
    objects: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    config: ObjectBuildConfig | None = None,
    force: bool = False,
) -> dict:
    """Build (or find) the object-motion set under ``root/embedded/objects-v1``; returns the manifest.

    ``objects``: a folder of RGBA cut-outs (default: Tux Paint's stamps where installed; without either,
    FileNotFoundError naming ``apt-get install tuxpaint-stamps-default`` and ``--objects DIR``, raised
    before anything is written). A finished build with the same parameters, cut-outs and resolutions
    returns at once; anything else renders every requested resolution again (the folder is the lab's
    own cache: nothing else lives there).
    """
    config = config or ObjectBuildConfig()
    resolutions = sorted({int(r) for r in resolutions})
    if not resolutions or any(r < 8 or r > config.render_size for r in resolutions):
        raise ValueError(f"resolutions must be between 8 and {config.render_size} pixels, got {resolutions}")
    folder, cutouts = find_cutouts(objects)
    digest = config.digest(cutouts)
    directory = objects_dir(root)
    manifest = load_object_manifest(root) if not force else None
    same = bool(manifest) and manifest.get("params_hash") == digest
    if same and _is_complete(manifest, directory, resolutions):
        return {**manifest, "built_now": False}
    if same:  # a new size of the same clips: the sizes already built are rendered again beside it
        resolutions = sorted(set(resolutions) | {int(r) for r in manifest["resolutions"]})
    started = time.perf_counter()
    plan = plan_object_clips(cutouts, config)
    directory.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-clip tensors are small (see build_embedded_dataset)
    try:
        records = _render_clips(directory, folder, plan, config, resolutions, progress)
    finally:
        torch.set_num_threads(threads)
    return _write_index_and_manifest(directory, folder, plan, config, digest, resolutions, records, started)


def _render_clips(directory: Path, folder: Path, plan: dict, config, resolutions, progress) -> list[dict]:
    clips, count = plan["clips"], len(plan["clips"])
    arrays = {}
    for r in resolutions:
        arrays[("clips", r)] = np.lib.format.open_memmap(
            directory / f"clips_{r}.npy.tmp", mode="w+", dtype=np.uint8, shape=(count, NUM_FRAMES, 3, r, r)
        )
        arrays[("flow", r)] = np.lib.format.open_memmap(
            directory / f"flow_{r}.npy.tmp",
            mode="w+",
            dtype=np.float16,
            shape=(count, NUM_FRAMES - 1, 2, r, r),
        )
    backgrounds: dict[str, torch.Tensor] = {}
    cutouts: dict[int, torch.Tensor] = {}
    records = []
    try:
        for index, clip in enumerate(tqdm(clips, desc="object clips", disable=not progress, unit="clip")):
            if clip["background"] not in backgrounds:
                backgrounds[clip["background"]] = prepare_photo(clip["background"], config.photo_short_side)
            for i in clip["objects"]:
                if i not in cutouts:
                    cutouts[i] = load_cutout(folder / plan["cutouts"][i].relpath, config.cutout_side)
            rng = np.random.default_rng([config.seed, 31337, index])
            scene, record = plan_object_scene(
                backgrounds[clip["background"]], [cutouts[i] for i in clip["objects"]], rng, frames=NUM_FRAMES
            )
            records.append(record)
            frames = scene.frames(config.render_size)
            for r in resolutions:
                small = F.interpolate(frames, size=(r, r), mode="area") if r != config.render_size else frames
                arrays[("clips", r)][index] = (small.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
                arrays[("flow", r)][index] = scene.flow(r).to(torch.float16).numpy()
        for (kind, r), array in list(arrays.items()):
            array.flush()
            del arrays[(kind, r)], array
            os.replace(directory / f"{kind}_{r}.npy.tmp", directory / f"{kind}_{r}.npy")
    finally:
        for kind, r in list(arrays):
            arrays.pop((kind, r))
            (directory / f"{kind}_{r}.npy.tmp").unlink(missing_ok=True)
    return records


def _write_index_and_manifest(directory, folder, plan, config, digest, resolutions, records, started) -> dict:
    clips, usable = plan["clips"], plan["cutouts"]
    licence = _cutout_licence(folder)
    index = {
        "label": [c["label"] for c in clips],
        "split": [c["split"] for c in clips],
        "objects": [c["objects"] for c in clips],
        "background": [c["background"] for c in clips],
        "camera": [r["camera"] for r in records],
        "object_motions": [r["objects"] for r in records],
        "cutouts": [
            {"relpath": c.relpath, "category": c.category, "description": c.description, "split": s}
            for c, s in zip(usable, plan["object_split"], strict=True)
        ],
        "backgrounds": [
            {"name": p.name, "licence": p.licence, "split": plan["background_split"][p.name]} for p in PHOTOS
        ],
        "licences": {"cut-outs": licence, "backgrounds": "per background, see backgrounds"},
    }
    atomic_write_text(directory / "index.json", json.dumps(index))
    splits = Counter(index["split"])
    names = ["index.json", *(f"{kind}_{r}.npy" for r in resolutions for kind in ("clips", "flow"))]
    manifest = {
        "format": OBJECTS_VERSION,
        "params": asdict(config),
        "params_hash": digest,
        "cutout_folder": str(folder),
        "cutout_licence": licence,
        "resolutions": list(resolutions),
        "num_frames": NUM_FRAMES,
        "num_clips": len(clips),
        "num_train_clips": splits["train"],
        "num_test_clips": splits["test"],
        "num_objects": {s: plan["object_split"].count(s) for s in ("train", "test")},
        "test_backgrounds": sorted(n for n, s in plan["background_split"].items() if s == "test"),
        "class_names": plan["class_names"],
        "clips_per_class": dict(sorted(Counter(plan["class_names"][c["label"]] for c in clips).items())),
        "build_seconds": round(time.perf_counter() - started, 1),
        "files": {name: file_record(directory / name) for name in names},
    }
    atomic_write_text(directory / "manifest.json", json.dumps(manifest, indent=1))
    return {**manifest, "built_now": True}


def clips_across_categories(labels: Sequence[int], count: int, seed: int = 0) -> list[int]:
    """``count`` positions into ``labels``, one per category in turn (seeded), so a sheet shows many."""
    rng = np.random.default_rng(seed)
    by_label = {int(k): list(rng.permutation(np.flatnonzero(np.asarray(labels) == k))) for k in set(labels)}
    order = [int(k) for k in rng.permutation(sorted(by_label))]
    picks: list[int] = []
    while len(picks) < min(count, len(labels)):
        for k in order:
            if by_label[k] and len(picks) < count:
                picks.append(int(by_label[k].pop()))
    return picks


class ObjectClipsDataset(torch.utils.data.Dataset):
    """Clips of the object-motion set: {"video": (F, 3, r, r) float32 in [-1, 1] (uint8 with
    ``uint8=True``), "flow": (F - 1, 2, r, r) float32 pixels, "label", "clip_index"}."""

    def __init__(self, root=None, resolution: int = 32, split: str = "train", *, uint8: bool = False):
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        self.root, self.resolution, self.uint8 = objects_dir(root), int(resolution), bool(uint8)
        manifest = load_object_manifest(root)
        if manifest is None or self.resolution not in manifest["resolutions"]:
            raise FileNotFoundError(
                f"the object-motion set at {self.resolution}x{self.resolution} is not built under "
                f"{self.root}; run `pyoco-lab data build --objects --resolutions {self.resolution}`"
            )
        self.manifest = manifest
        index = read_json(self.root / "index.json", "object-motion set index")
        splits = np.array(index["split"])
        self.indices = np.flatnonzero(splits == split) if split != "all" else np.arange(len(splits))
        self.labels = np.asarray(index["label"], dtype=np.int64)[self.indices]
        self.class_names = tuple(manifest["class_names"])
        self.num_classes = len(self.class_names)
        self._open()

    def _open(self) -> None:
        self._clips = np.load(self.root / f"clips_{self.resolution}.npy", mmap_mode="r")
        self._flow = np.load(self.root / f"flow_{self.resolution}.npy", mmap_mode="r")

    def __getstate__(self) -> dict:  # DataLoader workers map the files again (see EmbeddedVideoDataset)
        return {k: v for k, v in self.__dict__.items() if k not in ("_clips", "_flow")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        clip = int(self.indices[i])
        stored = torch.from_numpy(np.array(self._clips[clip], dtype=np.uint8))
        return {
            "video": stored if self.uint8 else to_unit_range(stored),
            "flow": torch.from_numpy(np.array(self._flow[clip], dtype=np.float32)),
            "label": int(self.labels[i]),
            "clip_index": clip,
        }
