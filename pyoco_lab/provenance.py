"""Where a result came from: the commit of the code, the machine, the time — recorded beside every shipped
model, every part of a training run and every measured curve, so a number can be traced to what made it."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from pyoco_lab.devices import CPUINFO, cpu_native_bf16

REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: str | os.PathLike = REPO) -> str:
    """The short commit of the lab's checkout, with "+changes" when tracked files differ from it;
    "unknown" outside a git checkout (an installed wheel)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if dirty else "")


def repo_relative(path: str | os.PathLike, repo: str | os.PathLike = REPO) -> str:
    """``path`` as written from the lab's checkout root when it lies inside it (what a committed record
    should cite), else as an absolute path."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path(repo).resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def cpu_name(cpuinfo: str = CPUINFO) -> str:
    """The processor's model name from /proc/cpuinfo (``platform.processor()`` is often empty on Linux)."""
    try:
        lines = open(cpuinfo).read().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU"
    )


def machine_description() -> str:
    """E.g. "x86_64, 2 CPU cores (AMD EPYC), native bf16: avx512_bf16"."""
    bf16 = cpu_native_bf16()
    return f"{platform.machine()}, {os.cpu_count()} CPU cores ({cpu_name()})" + (
        f", native bf16: {bf16}" if bf16 else ""
    )


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
