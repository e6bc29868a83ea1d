"""A study's training runs and the cache they share, so nothing is trained twice.

A run is a :class:`RunSpec` (a :class:`pyoco_lab.training.TrainConfig` plus the image run it is finetuned
from, if any). Its folder name is derived from a hash of the config, so the alpha sweep, the strategies
table and the model-size study share identical runs through ``cache_dir`` -- ``pyoco_lab.training.train``
returns at once when the folder holds a finished run, a shipped model stands in for the run that would make
it (``run_weights``), and a longer run continues a shorter one's prefix (``continue_from_prefix``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyoco_lab.analysis.presets import Settings
from pyoco_lab.fileio import json_digest
from pyoco_lab.noise import alpha_name
from pyoco_lab.training import (
    TrainConfig,
    preset_config,
    pretrained,
    train,
)
from pyoco_lab.training.checkpoints import (
    checkpoint_folders,
    checkpoint_step,
    load_config,
    verify_checkpoint,
)
from pyoco_lab.training.config import KEY_NEUTRAL_VALUES, RESUMABLE_CHANGES


@dataclass(frozen=True)
class RunSpec:
    """One training run: its config and, for a finetune, the image run it starts from."""

    label: str
    config: TrainConfig
    init: RunSpec | str | None = None  # an image run to train first, or a shipped "pretrained:NAME"

    def key(self) -> str:
        """A short hash of everything that changes the result (config and init chain)."""
        if isinstance(self.init, RunSpec):
            init = self.init.key()
        else:  # a shipped model enters with its hash, so re-exported weights give new run folders
            init = pretrained.init_record(self.init) if self.init else None
        payload = {"config": _config_dict(self.config), "init": init}
        return json_digest(payload, 10)

    def folder(self, cache_dir: str | os.PathLike) -> Path:
        return Path(cache_dir) / "runs" / f"{self.label}-{self.key()}"

    def trajectory_key(self) -> str:
        """A hash of what decides the weights at every step: :meth:`key` without the fields that only say
        how far to go, what to log or how to sample along the way (``RESUMABLE_CHANGES``). Runs that differ
        only in ``steps`` share it, and the shorter one's weights are the longer one's at that step (with a
        learning-rate decay the length moves the decay, so ``steps`` then stays in)."""
        if isinstance(self.init, RunSpec):
            init = self.init.trajectory_key()
        else:
            init = pretrained.init_record(self.init) if self.init else None
        ignored = RESUMABLE_CHANGES - ({"steps", "decay_steps"} if self.config.decay_steps else set())
        config = {k: v for k, v in _config_dict(self.config).items() if k not in ignored}
        payload = {"trajectory": config, "init": init}
        return json_digest(payload, 10)


def _config_dict(config) -> dict:
    values = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in KEY_NEUTRAL_VALUES or v != KEY_NEUTRAL_VALUES[k]
    }
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def image_run(s: Settings, *, model: str | None = None, seed: int = 0) -> RunSpec:
    """The image model pre-trained on frames (i.i.d. noise), shared by every finetune of that size."""
    overrides = s.train_overrides("image")
    if model is not None:
        overrides["model"] = model
    config = preset_config(s.train_preset, "image", seed=seed, **overrides)
    return RunSpec(f"image-{config.model}", config)


def video_run(
    s: Settings,
    kind: str,
    alpha: float,
    *,
    finetune: bool = True,
    model: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> RunSpec:
    """A video run with prior (kind, alpha), finetuned from the image model or from scratch.

    alpha = 0 is i.i.d. noise whatever the kind, and alpha = inf is the same noise in every frame
    for both mixed and progressive; those runs are normalised to one config so they are shared.
    ``steps`` replaces the preset's ``video_steps`` (the finetune-length curve's longer runs); ``extra``
    overrides any other TrainConfig field, last (Fig. 6's ``sample_extra``).
    """
    alpha = float(alpha)
    if alpha == 0.0 or kind == "iid":
        kind, alpha = "iid", 0.0
    elif math.isinf(alpha):
        kind = "mixed"
    overrides = s.train_overrides("video")
    if seed in s.confirm_seeds:
        overrides.update(s.confirm_extra)
    if model is not None:
        overrides["model"] = model
    if steps is not None:
        overrides["steps"] = steps
    overrides.update(extra or {})
    config = preset_config(s.train_preset, "video", noise=kind, alpha=alpha, seed=seed, **overrides)
    origin = "ft" if finetune else "scratch"
    label = f"video-{config.model}-{origin}-{kind}-{alpha_name(alpha)}-s{seed}"
    return RunSpec(label, config, image_source(s, model=model) if finetune else None)


def image_source(s: Settings, *, model: str | None = None) -> RunSpec | str:
    """What finetunes (and the inversion study) start from: the preset's shipped image model when it
    fits ``model``, else the image run pre-trained in the cache."""
    spec = image_run(s, model=model)
    if s.image_model and not s.pretrain_image:
        shipped = pretrained.get(s.image_model).train_config
        if (shipped.model, shipped.resolution) == (spec.config.model, spec.config.resolution):
            return s.image_model
    return spec


def ensure_image_model(s: Settings, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path | str:
    """The image model of the preset, ready to load: ``pretrained:NAME``, or a trained run folder."""
    source = image_source(s)
    return source if isinstance(source, str) else ensure_run(source, cache_dir, progress=progress)


def ensure_run(spec: RunSpec, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Train ``spec`` (and its image model first) unless ``cache_dir`` already holds it; return its folder.

    A run killed part-way resumes from its newest intact checkpoint: the folder is named by a hash of
    the config and init chain, so whatever is in it can only be this run.
    """
    init = (
        ensure_run(spec.init, cache_dir, progress=progress) if isinstance(spec.init, RunSpec) else spec.init
    )
    folder = spec.folder(cache_dir)
    if not folder.exists():
        continue_from_prefix(spec, cache_dir)
    return Path(train(spec.config, folder, init=init, resume=True, progress=progress))


def continue_from_prefix(spec: RunSpec, cache_dir: str | os.PathLike) -> Path | None:
    """Start ``spec``'s folder from a run of the same trajectory already in the cache (same label, init chain
    and trajectory key, another length: a curve extended from 2,000 to 3,000 steps), so training resumes at
    its newest intact checkpoint within ``spec``'s steps instead of at step 0 -- bitwise the same run.

    The other run's config, history, log and its intact checkpoints up to ``spec``'s steps are *copied*
    (the earlier ones too: a curve evaluates steps its records may not hold yet) into a staging folder
    renamed into place, so a crash leaves nothing half-made; its folder is left as it is. Returns the
    checkpoint continued from, or None when the cache holds no such run.
    """
    folder = spec.folder(cache_dir)
    found: list[tuple[Path, list[Path]]] = []
    for other in sorted(folder.parent.glob(f"{spec.label}-*")):
        try:
            candidate = RunSpec(spec.label, load_config(other), spec.init)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if other == folder or candidate.folder(cache_dir) != other:  # the folder is not that run's own
            continue
        if candidate.trajectory_key() != spec.trajectory_key():
            continue
        within = [c for c in checkpoint_folders(other) if checkpoint_step(c) <= spec.config.steps]
        intact = [c for c in within if _intact(c)]  # newest first
        if intact:
            found.append((other, intact))
    if not found:
        return None
    # the run that got furthest along this trajectory (a 2,000-step curve run before a 1,000-step sweep run)
    other, intact = max(found, key=lambda item: checkpoint_step(item[1][0]))
    staging = Path(tempfile.mkdtemp(prefix=f".prefix-{spec.label}-", dir=folder.parent))
    for name in ("config.json", "history.jsonl", "log.csv"):
        if (other / name).is_file():
            shutil.copy2(other / name, staging / name)
    for checkpoint in intact:
        shutil.copytree(checkpoint, staging / "checkpoints" / checkpoint.name)
    os.replace(staging, folder)
    return intact[0]


def _intact(checkpoint: Path) -> bool:
    try:
        verify_checkpoint(checkpoint, full=True)
    except ValueError:
        return False
    return True


def run_weights(spec: RunSpec, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path | str:
    """What to load for run ``spec``'s weights: the shipped video model trained exactly so (the alpha zoo,
    ``pretrained:NAME``: same config, same shipped image model), else its run folder, trained if needed."""
    if not isinstance(spec.init, RunSpec):
        shipped = pretrained.shipped_run(spec.config, spec.init)
        if shipped is not None:
            return shipped
    return ensure_run(spec, cache_dir, progress=progress)
