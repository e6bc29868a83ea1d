"""The embedded dataset's files: where they live and what a finished build is.

``<root>/embedded/v1/`` (:func:`embedded_dir`; ``root`` defaults to :func:`default_data_root`) holds
``clips_<r>.npy`` (num_clips x 16 x 3 x r x r uint8) per resolution, ``index.json`` (per clip: source
video, label, split) and ``manifest.json`` (the build's parameters hash, resolutions and every file's size
and sha256). The functions here read and check them -- cheaply (sizes, .npy headers) or fully (sha256);
``data.embedded`` builds them and serves them as datasets.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyoco_lab.fileio import read_json, sha256_file

FORMAT_VERSION = 1
NUM_FRAMES = 16


def default_data_root() -> Path:
    """``$PYOCO_DATA`` if set, else the repository's ``data/`` folder, else ``~/.cache/pyoco-lab/data``."""
    env = os.environ.get("PYOCO_DATA")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.home() / ".cache" / "pyoco-lab" / "data"


def embedded_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root if root is not None else default_data_root()) / "embedded" / f"v{FORMAT_VERSION}"


def read_manifest(path: Path) -> dict:
    """The manifest at ``path``; ValueError saying what is wrong with it (naming the file)."""
    manifest = read_json(path, "embedded dataset manifest")  # names the file when it is not JSON
    if (
        not isinstance(manifest, dict)
        or not {"params_hash", "resolutions", "num_clips"} <= set(manifest)
        or not all(isinstance(r, int) for r in manifest["resolutions"])
    ):
        raise ValueError(f"embedded dataset manifest {path} is not a manifest of this lab")
    return manifest


def load_manifest(root: str | os.PathLike | None = None) -> dict | None:
    """The finished build's manifest, or None if there is no finished build under ``root``.

    A manifest that is not valid JSON, or not a manifest, raises ValueError naming the file and
    the fix (``pyoco-lab data build`` rebuilds it).
    """
    path = embedded_dir(root) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return read_manifest(path)
    except ValueError as error:
        raise ValueError(f"{error}; `pyoco-lab data build` rebuilds the dataset") from None


def file_record(path: Path) -> dict:
    """What the manifest records of a finished file: its size and sha256 (computed once, at build)."""
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def open_clips(directory: Path, resolution: int, manifest: dict, *, verify: bool = False) -> np.ndarray:
    """Memory-map ``clips_<resolution>.npy``, or raise ValueError saying what is wrong with it.

    Always (cheap): the file exists, its size is the one the manifest recorded (when it did; older
    manifests did not), the .npy header maps and holds (num_clips, 16, 3, r, r) uint8, and the file
    is exactly as long as that header says. ``verify`` also compares the recorded sha256.
    """
    path = directory / f"clips_{resolution}.npy"
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    size = path.stat().st_size
    record = manifest.get("files", {}).get(path.name) if isinstance(manifest.get("files"), dict) else None
    if record and size != record.get("bytes"):
        raise ValueError(
            f"{path} has {size:,} bytes but the manifest recorded {record.get('bytes'):,} (truncated?)"
        )
    try:
        clips = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is truncated or not a .npy array ({error})") from None
    expected = (int(manifest["num_clips"]), NUM_FRAMES, 3, resolution, resolution)
    if clips.shape != expected or clips.dtype != np.uint8:
        raise ValueError(f"{path} holds {clips.dtype} {clips.shape}, expected uint8 {expected}")
    if size != clips.offset + clips.nbytes:
        raise ValueError(f"{path} has {size:,} bytes, its header says {clips.offset + clips.nbytes:,}")
    if verify:
        if not record or "sha256" not in record:
            raise ValueError(f"{path} has no recorded sha256 (the build is older than the check)")
        if sha256_file(path) != record["sha256"]:
            raise ValueError(f"{path} does not match the sha256 the manifest recorded (corrupted)")
    return clips


def check_build(manifest: dict, directory: Path, resolutions, *, verify: bool) -> dict[int, str]:
    """{resolution: what is wrong} for the arrays of ``resolutions``; index.json's problem under key 0."""
    problems = {}
    for r in resolutions:
        try:
            open_clips(directory, r, manifest, verify=verify)
        except ValueError as error:
            problems[r] = str(error)
    try:
        read_index(directory, manifest, verify=verify)
    except ValueError as error:
        problems[0] = str(error)
    return problems


def read_index(directory: Path, manifest: dict, *, verify: bool = False) -> dict:
    """``index.json``, checked against the manifest (size, clip count; sha256 with ``verify``)."""
    index = directory / "index.json"
    record = manifest.get("files", {}).get("index.json") if isinstance(manifest.get("files"), dict) else None
    if not index.is_file():
        raise ValueError(f"{index} is missing")
    if record and index.stat().st_size != record.get("bytes"):
        raise ValueError(
            f"{index} has {index.stat().st_size:,} bytes but the manifest recorded {record.get('bytes'):,}"
        )
    if verify and record and sha256_file(index) != record.get("sha256"):
        raise ValueError(f"{index} does not match the sha256 the manifest recorded (corrupted)")
    doc = read_json(index, "embedded dataset index")
    keys = ("video_id", "label", "split", "videos")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in keys):
        raise ValueError(f"{index} is not an index of this lab (needs lists {', '.join(keys)})")
    if not len(doc["video_id"]) == len(doc["label"]) == len(doc["split"]) == int(manifest["num_clips"]):
        raise ValueError(f"{index} does not list the manifest's {manifest['num_clips']} clips")
    return doc


def check_embedded_dataset(root: str | os.PathLike | None = None, *, verify: bool = False) -> list[str]:
    """What is wrong with the finished build under ``root`` ([] when nothing; raises if none).

    Cheap by default (sizes and .npy headers); ``verify`` also compares every file's sha256.
    """
    manifest = load_manifest(root)
    if manifest is None:
        raise FileNotFoundError(f"no embedded dataset under {embedded_dir(root)}; run `pyoco-lab data build`")
    problems = check_build(manifest, embedded_dir(root), manifest["resolutions"], verify=verify)
    return [problems[key] for key in sorted(problems)]
