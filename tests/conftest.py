"""Fixtures shared by several test files."""

from __future__ import annotations

import errno
import os

import pytest


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """A path under which nothing can be created, like a read-only mount (simulated: tests run as root,
    who may write anywhere, so ``os.mkdir`` below it raises EROFS)."""
    real_mkdir = os.mkdir
    locked = tmp_path / "read-only"

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(locked)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    return locked
