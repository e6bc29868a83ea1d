"""The set-up every figure notebook (``notebooks/01``-``07``) runs right after its ``parameters`` cell.

A notebook imports what it uses, then calls::

    s, out = notebook.start(preset, figures_dir, noise_alphas=alphas, ...)

``s`` is the preset's :class:`~pyoco_lab.analysis.presets.Settings` with the notebook's
non-``None`` knobs applied (see :func:`pyoco_lab.analysis.presets.settings`), ``out`` the figure
folder, created if missing. A preset that keeps run records (``Settings.keep_records``) reads and writes
them in ``runs/`` beside the notebook folders (``figures/<preset>/runs``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from pyoco_lab.analysis import presets, run_records
from pyoco_lab.analysis.presets import Settings
from pyoco_lab.data import build_embedded_dataset
from pyoco_lab.training import preset_config


def start(preset: str, figures_dir: str | os.PathLike, /, **overrides) -> tuple[Settings, Path]:
    """Settings of ``preset`` with ``overrides`` applied and the created ``figures_dir``; prints the preset.

    ``overrides`` are ``Settings`` field names; ``None`` keeps the preset's value, unknown names raise
    ``ValueError`` (before the figure folder is made).
    """
    torch.set_num_threads(max(1, torch.get_num_threads()))
    s = presets.settings(preset, **overrides)
    if (
        s.keep_records and s.records_dir is None
    ):  # the committed run records live beside the notebooks' folders
        s = replace(s, records_dir=str(Path(figures_dir).resolve().parent / run_records.RECORDS_FOLDER))
    ensure_data(s)
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"preset {s.name}: {s.description} (budget: {s.budget})")
    return s, out


def ensure_data(s: Settings) -> None:
    """Build the embedded dataset at the preset's resolution if it is missing (offline, about a minute;
    a no-op check when it is there): notebooks read real frames before any training run would build it."""
    config = preset_config(s.train_preset, "image", **s.train_overrides("image"))
    if config.dataset == "embedded":
        build_embedded_dataset(config.data_root, resolutions=(config.resolution,), progress=False)
