"""Files that are written whole or not at all, and JSON that names its file when it is bad.

Every writer in the lab (checkpoint pointers, run configs, results, evaluation caches, videos)
goes through a temporary sibling and ``os.replace``, so a kill at any moment leaves either the old
file or the new one, never half of one. Temporary files get the usual permissions (``mkstemp``
makes them 0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any


def umask() -> int:
    """The process's file-creation mask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_file(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished temporary file into place with the usual permissions."""
    os.chmod(tmp, 0o666 & ~umask())
    os.replace(tmp, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling; ``fsync`` makes it durable first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
        tmp = f.name
    try:
        publish_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON file; a missing or malformed file raises an error naming it (not a traceback)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is not valid JSON ({error}); restore it or remove it") from None


def follow_umask(path: str | os.PathLike) -> None:
    """Give a file written by a library that makes it private (safetensors, ``mkstemp``: 0600) the usual
    permissions, so other users of a shared cache can read it."""
    os.chmod(path, 0o666 & ~umask())


# What no command's output replaces, at any depth, not even with --overwrite: a training run (it holds
# checkpoints/ or history.jsonl, pyoco_lab.training.checkpoints), a checkpoint (a step-NNNNNNN folder, or one
# holding model or EMA weights) and committed run records (JSON with a run key and evaluations,
# pyoco_lab.analysis.run_records).
RUN_MARKS = ("checkpoints", "history.jsonl")
CHECKPOINT_FILES = ("model.safetensors", "ema.safetensors")
CHECKPOINT_NAME = re.compile(r"(unreadable-)?step-\d{7}.*")
RECORD_KEYS = ("run_key", "evaluations")
NEVER_REPLACED = "--overwrite never replaces a run, a checkpoint or run records, at any depth"


def protected_inside(folder: str | os.PathLike) -> tuple[Path, str] | None:
    """(path, what) of the first training run, checkpoint or run-records folder at or under ``folder``, else
    None. Links are not followed: replacing a folder removes a link, never what it points to."""
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        dirs.sort()
        if any(mark in dirs or mark in files for mark in RUN_MARKS):
            return root, "a training run"
        if CHECKPOINT_NAME.fullmatch(root.name) or any(name in files for name in CHECKPOINT_FILES):
            return root, "a checkpoint"
        if any(name.endswith(".json") and _is_run_record(root / name) for name in sorted(files)):
            return root, "run records"
    return None


def _is_run_record(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(key in data for key in RECORD_KEYS)


def check_folder_path(path: str | os.PathLike, option: str) -> None:
    """Refuse a folder ``option`` that names a file, or lies under one, before any work writes into it."""
    path = Path(path)
    for existing in (path, *path.parents):
        if existing.exists() or existing.is_symlink():
            if not existing.is_dir():
                where = "is a file" if existing == path else f"lies under the file {existing}"
                raise ValueError(f"{option} {path} {where}, not a folder; name a folder")
            return


def check_output_folder(
    target: str | os.PathLike,
    *,
    marker: str,
    files: tuple[str, ...] | None = (),
    overwrite: bool = False,
    option: str = "--out",
) -> None:
    """The one ownership rule of every command that writes a folder: ``target`` may be missing, an empty
    folder or this command's own earlier output (it holds ``marker`` and nothing besides ``files``;
    ``files=None`` for a notebook's folder, whose file names vary, known by ``marker`` alone); any other
    folder needs ``overwrite``. Never replaced, even with ``overwrite``: a file (a file is never turned into
    a folder) and a folder that is or holds, at any depth, a training run, a checkpoint or run records
    (:func:`protected_inside`; refused naming the path it protects). ``option`` is the command's option
    that names the folder, for the error messages."""
    target = Path(target)
    if not (target.exists() or target.is_symlink()):
        return
    if target.is_symlink() or not target.is_dir():
        raise ValueError(
            f"{target} is a file, not an output folder; choose another {option} (a file is never replaced "
            "by a folder, not even with --overwrite)"
        )
    protected = protected_inside(target)
    if protected is not None:
        where, what = protected
        if where == target:
            raise ValueError(f"{target} is {what}; write into another {option} ({NEVER_REPLACED})")
        raise ValueError(f"{target} holds {what} ({where}); choose another {option} ({NEVER_REPLACED})")
    entries = sorted(entry.name for entry in target.iterdir())
    own = marker in entries and (files is None or set(entries) <= {marker, *files})
    if entries and not own and not overwrite:
        listed = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ValueError(
            f"{target} already holds files this command did not write ({listed}); choose a new {option}, or "
            "pass --overwrite to replace the folder"
        )


@contextlib.contextmanager
def staged_folder(
    target: str | os.PathLike,
    *,
    marker: str,
    files: tuple[str, ...] | None = (),
    overwrite: bool = False,
    option: str = "--out",
):
    """Write a folder whole or not at all, never over what the user had: yields a staging folder beside
    ``target``; on success it replaces ``target`` (an older one is removed only after the new one is in
    place), on an error it is deleted and ``target`` is untouched.

    Checked on entry, so a caller enters it before its expensive work: ``target`` must pass
    :func:`check_output_folder` (again just before the swap), its parent must be writable, and no other
    live process may be writing the same ``target`` (each writer holds an ``flock`` on its staging folder;
    one of a dead process is removed)."""
    target = Path(target)
    rule = dict(marker=marker, files=files, overwrite=overwrite, option=option)
    check_folder_path(target.parent, option)
    check_output_folder(target, **rule)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    except OSError as error:
        _remove_empty(created)
        raise ValueError(
            f"cannot write into {target.parent} ({error.strerror or error}); choose a writable {option}"
        ) from None
    handle = os.open(staging, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # our own new folder: never held by another
    try:
        others = target.parent.glob(f".{glob.escape(target.name)}.staging-*")
        remove_dead_staging([other for other in others if other != staging], target, option)
        yield staging
        check_output_folder(target, **rule)  # appeared meanwhile?
        os.chmod(staging, 0o777 & ~umask())
        if target.exists():  # a folder (check_output_folder refuses a file)
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)  # the parents this call made, when nothing else went into them
        raise
    finally:
        os.close(handle)
        shutil.rmtree(staging, ignore_errors=True)


def remove_dead_staging(folders, target: Path, option: str = "--out") -> None:
    """Remove the staging ``folders`` of ``target`` whose writer died (a killed command); raise if a live
    process holds one (it is writing ``target`` now)."""
    for other in folders:
        try:
            handle = os.open(other, os.O_RDONLY)
        except OSError:
            continue  # removed meanwhile
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(
                f"another process is writing {target} now; wait for it to finish, or choose another {option}"
            ) from None
        else:
            shutil.rmtree(other, ignore_errors=True)  # its writer died (the kernel released its lock)
        finally:
            os.close(handle)


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders this call created (deepest first) when they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (weight files can be GBs; nothing is kept)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def json_digest(value: Any, length: int, *, default=None) -> str:
    """The first ``length`` hex digits of the sha256 of ``value`` as sorted-key JSON: the cache and record
    keys of the lab (runs, evaluations, sweeps, controls). ``default`` as ``json.dumps``'s."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=default).encode()).hexdigest()[:length]
