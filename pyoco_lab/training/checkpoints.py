"""Run folders, checkpoints and resume.

Run folder::

    RUN/config.json                    the TrainConfig (+ init path), checked on --resume
    RUN/log.csv, RUN/tb/               per-step metrics (CSV and TensorBoard)
    RUN/samples/step-XXXXXXX.{gif,mp4,png}   EMA samples drawn with the run's noise prior
    RUN/checkpoints/latest.json        pointer to the newest complete checkpoint (atomic)
    RUN/checkpoints/step-XXXXXXX/      model.safetensors, ema.safetensors, state.pt

Weights are safetensors (no code runs when they load); the optimiser and RNG state is a
``weights_only`` torch file. A checkpoint folder is written under a temporary name and renamed
into place when complete, and the pointer is replaced atomically afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pyoco_lab import edm
from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.training import networks
from pyoco_lab.training.config import RESUMABLE_CHANGES, TrainConfig, config_from_dict
from pyoco_lab.training.randomness import rng_state, set_rng_state

CONFIG_FILE = "config.json"
LATEST_FILE = "latest.json"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"


def default_runs_root() -> Path:
    """Default home of runs: ``$PYOCO_RUNS``, else ``runs/`` in the repository (where the explorer looks)."""
    if os.environ.get("PYOCO_RUNS"):
        return Path(os.environ["PYOCO_RUNS"]).expanduser()
    return Path(__file__).resolve().parents[2] / "runs"


# ----------------------------------------------------------------------------------------------
# The run's metadata: config.json.


def read_run_meta(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass a run folder written by `pyoco-lab train --out`")
    return read_json(path, "run config")


def write_run_meta(run_dir: Path, config: TrainConfig, init, num_classes: int, world_size: int) -> None:
    meta = {
        "config": asdict(config),
        "init": str(Path(init).resolve()) if init else None,
        "num_classes": num_classes,
        "world_size": world_size,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(meta, indent=2) + "\n", fsync=True)


def load_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig stored in ``RUN/config.json``."""
    return config_from_dict(read_run_meta(Path(run_dir))["config"])


# ----------------------------------------------------------------------------------------------
# Checkpoints.


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:07d}"


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    pointer = Path(run_dir) / "checkpoints" / LATEST_FILE
    if not pointer.is_file():
        return None
    path = Path(run_dir) / "checkpoints" / json.loads(pointer.read_text())["path"]
    return path if path.is_dir() else None


def _state_dict_for_file(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: Path, step: int, *, model, ema, optimizer, complete: bool) -> Path:
    """Write a checkpoint folder atomically, then move the `latest` pointer to it.

    Files go into a hidden temporary folder that is renamed into place only when complete, and
    the pointer is replaced atomically afterwards: a kill at any moment leaves the previous
    checkpoint (and pointer) intact.
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(run_dir, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_state_dict_for_file(model), str(tmp / MODEL_FILE))
    save_file(_state_dict_for_file(ema), str(tmp / EMA_FILE))
    state = {"step": step, "optimizer": optimizer.state_dict(), "rng": rng_state(), "data_position": step}
    torch.save(state, tmp / STATE_FILE)
    for name in (MODEL_FILE, EMA_FILE, STATE_FILE):
        with open(tmp / name, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():  # left over from a killed run that never pointed at it
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(
        root / LATEST_FILE, json.dumps({"step": step, "path": final.name, "complete": complete}), fsync=True
    )
    return final


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Keep the ``keep`` newest checkpoint folders (and always the pointed-at one)."""
    root = Path(run_dir) / "checkpoints"
    folders = sorted(p for p in root.glob("step-*") if p.is_dir())
    latest = latest_checkpoint(run_dir)
    for old in folders[:-keep]:
        if old != latest:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def load_training_state(checkpoint: Path, model, ema, optimizer) -> int:
    """Load weights, EMA, optimiser and RNG state from ``checkpoint``; return its step."""
    model.load_state_dict(load_file(str(checkpoint / MODEL_FILE)))
    ema.load_state_dict(load_file(str(checkpoint / EMA_FILE)))
    state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return int(state["step"])


def resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint folder, run folder) from a run folder, a checkpoint folder or a weights file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; pass a run folder or a checkpoint from `pyoco-lab train`"
        )
    if path.is_file():
        path = path.parent
    if (path / CONFIG_FILE).is_file():
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            raise FileNotFoundError(f"run {path} has no checkpoint yet; train it first (or --resume it)")
        return checkpoint, path
    if (path / MODEL_FILE).is_file() and (path.parent.parent / CONFIG_FILE).is_file():
        return path, path.parent.parent
    raise FileNotFoundError(f"{path} is neither a run folder nor a checkpoint folder of `pyoco-lab train`")


def load_denoiser(
    run_dir_or_checkpoint: str | os.PathLike, *, ema: bool = True, device: torch.device | str = "cpu"
) -> tuple[edm.Denoiser, TrainConfig]:
    """(denoiser in eval mode, its TrainConfig) from a run folder (newest checkpoint) or a checkpoint."""
    checkpoint, run_dir = resolve_checkpoint(run_dir_or_checkpoint)
    meta = read_run_meta(run_dir)
    config = config_from_dict(meta["config"])
    denoiser = networks.build_network(config, num_classes=int(meta.get("num_classes", 0)))
    weights = load_file(str(checkpoint / (EMA_FILE if ema else MODEL_FILE)))
    denoiser.load_state_dict(weights)
    return denoiser.to(device).eval().requires_grad_(False), config


# ----------------------------------------------------------------------------------------------
# Starting a run: fresh, resumed or already done.


def prepare_run(config: TrainConfig, run_dir: Path, init, resume: bool) -> tuple[str, Path | None]:
    """Decide between 'done', 'resume' and 'fresh', refusing to mix different configs in one folder."""
    checkpoint = latest_checkpoint(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        if checkpoint is not None:
            raise ValueError(
                f"{run_dir} holds checkpoints but no {CONFIG_FILE}; choose an empty --out folder"
            )
        return "fresh", None
    meta = read_run_meta(run_dir)
    stored = config_from_dict(meta["config"])
    differ = {f.name for f in fields(TrainConfig) if getattr(stored, f.name) != getattr(config, f.name)}
    same_init = meta.get("init") == (str(Path(init).resolve()) if init else None)
    if checkpoint is None:
        return "fresh", None  # an earlier attempt died before its first checkpoint: start over
    done_step = json.loads((run_dir / "checkpoints" / LATEST_FILE).read_text())["step"]
    if not differ and same_init and done_step >= config.steps:
        return "done", checkpoint
    if differ - RESUMABLE_CHANGES or not same_init:
        what = ", ".join(f"{k}: {getattr(stored, k)!r} -> {getattr(config, k)!r}" for k in sorted(differ))
        raise ValueError(
            f"{run_dir} holds a run with a different config ({what or 'different --init'}); "
            "pass another --out folder, or the same options to resume it"
        )
    if not resume:
        raise ValueError(
            f"{run_dir} holds an unfinished run (step {done_step}); pass --resume to continue it "
            "or choose another --out folder"
        )
    return "resume", checkpoint
