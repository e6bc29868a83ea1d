"""Files that are written whole or not at all, and JSON that names its file when it is bad.

Every writer in the lab (checkpoint pointers, run configs, results, evaluation caches, videos)
goes through a temporary sibling and ``os.replace``, so a kill at any moment leaves either the old
file or the new one, never half of one. Temporary files get the usual permissions (``mkstemp``
makes them 0600).
"""

from __future__ import annotations

import contextlib
import json
import os
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


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike):
    """Write a folder whole or not at all: yields a staging folder beside ``target``; on success it
    replaces ``target`` (an older one is removed only after the new one is in place), on an error it is
    deleted and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~umask())
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
