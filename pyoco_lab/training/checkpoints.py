"""Run folders, checkpoints and resume.

Run folder::

    RUN/config.json                    the TrainConfig (+ init path), checked on --resume
    RUN/log.csv, RUN/tb/               per-step metrics (CSV and TensorBoard)
    RUN/samples/step-XXXXXXX.{gif,mp4,png}   EMA samples drawn with the run's noise prior
    RUN/.lock                          advisory lock of the one process writing the run
    RUN/checkpoints/latest.json        record of the newest checkpoint written (atomic)
    RUN/checkpoints/step-XXXXXXX/      model.safetensors, ema.safetensors, state.pt, manifest.json
    RUN/checkpoints/unreadable-step-…  checkpoints that failed verification, moved aside (never deleted)

Weights are safetensors (no code runs when they load); the optimiser and RNG state is a
``weights_only`` torch file. A checkpoint folder is written under a temporary name, with a manifest
of its files' sizes and sha256, and renamed into place when complete. Resume is exact or refused:
it continues from the newest checkpoint that matches its manifest and never starts a folder with
checkpoints over (docs/training.md, "Resume and locking").
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pyoco_lab import devices, edm
from pyoco_lab.fileio import atomic_write_text, follow_umask, read_json, sha256_file
from pyoco_lab.models.cascade import KNOWN_PER_WINDOW, SR_FACTOR, Cascade, interpolation_frameskip
from pyoco_lab.training import networks, pretrained
from pyoco_lab.training.config import (
    RESUMABLE_CHANGES,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    decay_start,
)
from pyoco_lab.training.randomness import rng_state, set_rng_state

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"  # one line per part of the run (each `train` invocation): what made it
LOCK_FILE = ".lock"
MANIFEST_FILE = "manifest.json"
LATEST_FILE = "latest.json"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
_STEP_NAME = re.compile(r"step-(\d{7})")


def default_runs_root() -> Path:
    """Default home of runs: ``$PYOCO_RUNS``; else ``runs/`` of the repository when the package runs from a
    clone (an editable install, where the explorer and the notebooks look); else ``./runs`` in the current
    directory -- never inside an installed package (``site-packages/runs``)."""
    if os.environ.get("PYOCO_RUNS"):
        return Path(os.environ["PYOCO_RUNS"]).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "pyoco_lab").is_dir():
        return repo / "runs"
    return Path.cwd() / "runs"


# ----------------------------------------------------------------------------------------------
# The run's metadata: config.json.


def read_run_meta(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass a run folder written by `pyoco-lab train --out`")
    return read_json(path, "run config")


def write_run_meta(run_dir: Path, config: TrainConfig, init, num_classes: int, world_size: int) -> None:
    meta = {
        "config": config_to_dict(config),  # valid JSON: inf as "inf"
        "init": init_record(init),
        "num_classes": num_classes,
        "world_size": world_size,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(meta, indent=2) + "\n", fsync=True)


def append_history(run_dir: Path, part: dict[str, Any]) -> None:
    """Add one part (command, steps from/to, wall time, commit, machine) to ``RUN/history.jsonl``.

    A long run is trained in parts (``--resume``), possibly on different machines; the registry of a shipped
    model copies this file, so its recipe says how every step was made (issue #23).
    """
    path = Path(run_dir) / HISTORY_FILE
    lines = path.read_text().splitlines() if path.is_file() else []
    atomic_write_text(path, "\n".join([*lines, json.dumps(part, allow_nan=False)]) + "\n", fsync=True)


def read_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The parts of a run, oldest first ([] for runs made before the history was kept)."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig stored in ``RUN/config.json``."""
    return config_from_dict(read_run_meta(Path(run_dir))["config"])


# ----------------------------------------------------------------------------------------------
# Checkpoints: written whole or not at all, each with a manifest of its files' sizes and hashes.


class CheckpointUnreadable(ValueError):
    """A checkpoint folder whose files do not match its manifest (truncated, missing, corrupt)."""


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:07d}"


def checkpoint_step(folder: Path) -> int | None:
    """The step of a ``step-XXXXXXX`` folder name, else None (temporary and quarantined folders)."""
    match = _STEP_NAME.fullmatch(Path(folder).name)
    return int(match.group(1)) if match else None


def recorded_step(folder: Path) -> int | None:
    """The training step of a checkpoint folder: from its name (``step-0000300``), else its state file."""
    step = checkpoint_step(folder)
    if step is not None:
        return step
    try:
        state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
        return int(state["step"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError):
        return None


def ema_sha256(folder: str | os.PathLike) -> str:
    """sha256 of a checkpoint folder's EMA weights file (the weights evaluations and samples use)."""
    return sha256_file(Path(folder) / EMA_FILE)


def checkpoint_folders(run_dir: str | os.PathLike) -> list[Path]:
    """Every ``step-XXXXXXX`` folder of a run, newest first (whether readable or not)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(folders, key=checkpoint_step, reverse=True)


def verify_checkpoint(folder: Path, *, full: bool = True) -> None:
    """Raise :class:`CheckpointUnreadable` (saying what is wrong) unless ``folder`` is intact.

    Checks every file against the manifest written with it: sizes always, sha256 when ``full``.
    Folders from before manifests existed are checked by reading them (safetensors headers and
    data, the weights-only state file).
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise CheckpointUnreadable(f"{folder} is missing")
    if not manifest_path.is_file():
        _verify_by_loading(folder)
        return
    try:
        manifest = read_json(manifest_path, "checkpoint manifest")
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointUnreadable(f"{manifest_path} is unreadable ({error})") from None
    for name in (MODEL_FILE, EMA_FILE, STATE_FILE):
        path, expected = folder / name, files.get(name)
        if expected is None or not path.is_file():
            raise CheckpointUnreadable(f"{path} is missing")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointUnreadable(f"{path} has {size} bytes, {expected['bytes']} were written")
        if full and sha256_file(path) != expected["sha256"]:
            raise CheckpointUnreadable(f"{path} does not match the sha256 recorded when it was written")


def _verify_by_loading(folder: Path) -> None:
    for name in (MODEL_FILE, EMA_FILE, STATE_FILE):
        path = folder / name
        if not path.is_file():
            raise CheckpointUnreadable(f"{path} is missing")
        try:
            if name == STATE_FILE:
                torch.load(path, map_location="cpu", weights_only=True)
            else:
                load_file(str(path))
        except Exception as error:  # any failure to read is the verdict, whatever its type
            raise CheckpointUnreadable(f"{path} cannot be read ({type(error).__name__}: {error})") from None


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint folder of a run whose files have the sizes they were written with, or None.

    Folders only appear by an atomic rename of a finished temporary folder, so the newest one that
    passes the size check is the newest complete checkpoint (``latest.json`` is kept as a record).
    """
    for folder in checkpoint_folders(run_dir):
        try:
            verify_checkpoint(folder, full=False)
        except CheckpointUnreadable:
            continue
        return folder
    return None


def _state_dict_for_file(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: Path, step: int, *, model, ema, optimizer, complete: bool) -> Path:
    """Write a checkpoint folder atomically, then move the `latest` pointer to it.

    Files go into a hidden temporary folder with a manifest of their sizes and sha256; the folder is
    renamed into place only when complete, and the pointer is replaced atomically afterwards: a kill
    at any moment leaves the previous checkpoint (and pointer) intact. A folder of the same step
    that is already there (written by a run that was later rolled back) is moved aside, not deleted.
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(run_dir, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_state_dict_for_file(model), str(tmp / MODEL_FILE))
    save_file(_state_dict_for_file(ema), str(tmp / EMA_FILE))
    for name in (MODEL_FILE, EMA_FILE):  # safetensors writes 0600: others sharing a cache could not read it
        follow_umask(tmp / name)
    state = {"step": step, "optimizer": optimizer.state_dict(), "rng": rng_state(), "data_position": step}
    torch.save(state, tmp / STATE_FILE)
    files = {}
    for name in (MODEL_FILE, EMA_FILE, STATE_FILE):
        with open(tmp / name, "rb") as handle:
            os.fsync(handle.fileno())
        files[name] = {"bytes": (tmp / name).stat().st_size, "sha256": sha256_file(tmp / name)}
    atomic_write_text(tmp / MANIFEST_FILE, json.dumps({"step": step, "files": files}, indent=1), fsync=True)
    if final.exists():
        quarantine(final, "replaced by a new checkpoint of the same step")
    os.replace(tmp, final)
    atomic_write_text(
        root / LATEST_FILE, json.dumps({"step": step, "path": final.name, "complete": complete}), fsync=True
    )
    return final


def quarantine(folder: Path, reason: str) -> Path:
    """Move a checkpoint folder aside as ``unreadable-step-XXXXXXX-<time>`` (never deleted by the lab)."""
    target = folder.with_name(f"unreadable-{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(folder, target)
    print(f"note: moved checkpoint {folder} aside to {target.name} ({reason})", file=sys.stderr)
    return target


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Keep the ``keep`` newest ``step-*`` checkpoints; quarantined folders are never touched."""
    root = Path(run_dir) / "checkpoints"
    for old in checkpoint_folders(run_dir)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):  # only this run's writer exists (the run lock), so these are dead
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


def describe_source(source: str | os.PathLike) -> tuple[TrainConfig, int]:
    """(TrainConfig, number of classes) of a run folder, a checkpoint or ``pretrained:NAME``, cheaply
    (no weights are read): what ``--init`` checks before any work."""
    if pretrained.is_pretrained(source):
        model = pretrained.get(source)
        return model.train_config, model.num_classes
    meta = read_run_meta(resolve_checkpoint(source)[1])
    return config_from_dict(meta["config"]), int(meta.get("num_classes", 0))


def init_record(init: str | os.PathLike | None) -> str | None:
    """How config.json records ``--init``: a resolved path, or a pretrained model's name and hash."""
    if init is None:
        return None
    return pretrained.init_record(init) if pretrained.is_pretrained(init) else str(Path(init).resolve())


def load_denoiser(
    run_dir_or_checkpoint: str | os.PathLike, *, ema: bool = True, device: torch.device | str = "auto"
) -> tuple[edm.Denoiser, TrainConfig]:
    """(denoiser in eval mode, its TrainConfig) from a run folder (newest checkpoint), a checkpoint,
    or a shipped model ``pretrained:NAME`` (hash verified).

    ``device`` follows the one device rule (:func:`pyoco_lab.devices.resolve_device`): ``auto`` is this
    rank's GPU when there is one, so every helper that loads a model computes where training would.
    """
    device = devices.resolve_device(device)
    if pretrained.is_pretrained(run_dir_or_checkpoint):
        return pretrained.load_pretrained(run_dir_or_checkpoint, device=device)
    checkpoint, run_dir = resolve_checkpoint(run_dir_or_checkpoint)
    meta = read_run_meta(run_dir)
    config = config_from_dict(meta["config"])
    denoiser = networks.build_network(config, num_classes=int(meta.get("num_classes", 0)))
    weights = load_file(str(checkpoint / (EMA_FILE if ema else MODEL_FILE)))
    denoiser.load_state_dict(weights)
    return denoiser.to(device).eval().requires_grad_(False), config


def load_cascade(
    base,
    interpolation,
    sr_low,
    sr_high=None,
    *,
    base_frames: int | None = None,
    ema: bool = True,
    device: torch.device | str = "auto",
) -> Cascade:
    """The :class:`~pyoco_lab.models.cascade.Cascade` of trained ``pyoco-lab train --stage
    base|interpolation|sr`` runs (folders, checkpoints or ``pretrained:NAME``), on ``device`` (the
    :func:`load_denoiser` rule): every stage samples with its own run's noise prior; the base size and
    frame count, the interpolation frame skip and the SR sizes follow the configs."""
    sources = [("base", base), ("interpolation", interpolation), ("sr", sr_low)]
    sources += [("sr", sr_high)] if sr_high is not None else []
    loaded = []
    for stage, source in sources:
        denoiser, config = load_denoiser(source, ema=ema, device=device)
        if config.stage != stage or config.phase != "video":
            raise ValueError(
                f"{source} is a {config.phase} run of stage {config.stage!r}; the cascade's {stage} "
                f"stage needs a video run trained with --stage {stage}"
            )
        loaded.append((denoiser, config))
    (base_net, base_config), (interp_net, interp_config) = loaded[:2]
    size = base_config.resolution
    if loaded[2][1].resolution != size * SR_FACTOR:
        raise ValueError(
            f"the SR run {sr_low} was trained at {loaded[2][1].resolution} px from {SR_FACTOR}x smaller "
            f"frames; the base run makes {size} px frames: train it with --resolution {size * SR_FACTOR}"
        )
    return Cascade(
        base_net,
        interp_net,
        loaded[2][0],
        loaded[3][0] if len(loaded) > 3 else None,
        base_frames=base_frames or base_config.num_frames,
        base_size=size,
        frameskip=interpolation_frameskip(interp_config.num_frames),
        known_per_window=KNOWN_PER_WINDOW,
        sr_sizes=(size * SR_FACTOR, size * SR_FACTOR**2),
        priors=tuple(config.prior for _, config in loaded),
    )


# ----------------------------------------------------------------------------------------------
# Starting a run: fresh, resumed or already done -- exact or refused, never silently from step 0.


@dataclass(frozen=True)
class RunPlan:
    """What :func:`prepare_run` decided: ``mode`` is "fresh", "resume" or "done"."""

    mode: str
    checkpoint: Path | None = None
    step: int = 0
    skipped: tuple[tuple[Path, str], ...] = ()  # newer checkpoints that could not be read, and why


def find_resumable(run_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint whose files match their manifest (sizes and sha256), and the newer
    ones that did not, with the reason each was skipped."""
    skipped = []
    for folder in checkpoint_folders(run_dir):
        try:
            verify_checkpoint(folder, full=True)
        except CheckpointUnreadable as error:
            skipped.append((folder, str(error)))
            continue
        return folder, skipped
    return None, skipped


def prepare_run(config: TrainConfig, run_dir: Path, init, resume: bool) -> RunPlan:
    """Decide between 'done', 'resume' and 'fresh', refusing to mix different configs in one folder.

    A folder with any trace of checkpoints is never treated as fresh: resume continues from the
    newest intact checkpoint (the unreadable newer ones are reported in ``skipped``), and when no
    checkpoint is intact the run is refused with nothing changed.
    """
    run_dir = Path(run_dir)
    folders = checkpoint_folders(run_dir)
    pointer = run_dir / "checkpoints" / LATEST_FILE
    if not (run_dir / CONFIG_FILE).is_file():
        if folders or pointer.is_file():
            raise ValueError(
                f"{run_dir} holds checkpoints but no {CONFIG_FILE}; choose an empty --out folder"
            )
        return RunPlan("fresh")
    meta = read_run_meta(run_dir)
    stored = config_from_dict(meta["config"])
    differ = {f.name for f in fields(TrainConfig) if getattr(stored, f.name) != getattr(config, f.name)}
    same_init = meta.get("init") == init_record(init)
    if differ - RESUMABLE_CHANGES or not same_init:
        what = ", ".join(f"{k}: {getattr(stored, k)!r} -> {getattr(config, k)!r}" for k in sorted(differ))
        raise ValueError(
            f"{run_dir} holds a run with a different config ({what or 'different --init'}); "
            "pass another --out folder, or the same options to resume it"
        )
    if not folders and not pointer.is_file():
        return RunPlan("fresh")  # an earlier attempt died before its first checkpoint: nothing to lose
    checkpoint, skipped = find_resumable(run_dir)
    named = _pointer_target(pointer)
    if named is not None and not named.is_dir() and checkpoint_step(named) is not None:
        if checkpoint is None or checkpoint_step(named) > checkpoint_step(checkpoint):
            skipped.insert(0, (named, f"{named} (named by {pointer.name}) is missing"))
    if checkpoint is None:
        found = "; ".join(reason for _, reason in skipped) or f"{pointer} names a checkpoint that is gone"
        raise ValueError(
            f"{run_dir} has no intact checkpoint to resume from ({found}); nothing was changed. Restore "
            "the checkpoint files, or train into a new --out folder (delete this one only if its run is "
            "expendable)"
        )
    step = checkpoint_step(checkpoint)
    if not skipped and step >= config.steps and not differ:
        return RunPlan("done", checkpoint, step)
    if decay_start(stored) != decay_start(config) and step > min(decay_start(stored), decay_start(config)):
        # The learning rate of the steps already taken would differ between the two schedules.
        raise ValueError(
            f"{run_dir} is at step {step}, past the start of the learning-rate decay (step "
            f"{min(decay_start(stored), decay_start(config)):g}); resume with its own --steps and "
            "--decay-steps, or continue in a new --out folder with --init"
        )
    if not resume:
        raise ValueError(
            f"{run_dir} holds an unfinished run (step {step}); pass --resume to continue it "
            "or choose another --out folder"
        )
    return RunPlan("resume", checkpoint, step, tuple(skipped))


def _pointer_target(pointer: Path) -> Path | None:
    """The folder ``latest.json`` names, or None when it is absent or garbage (it is only a record)."""
    try:
        return pointer.parent / str(json.loads(pointer.read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class RunFolderBusy(ValueError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """One writer per run folder: an advisory ``fcntl`` lock on ``RUN/.lock``.

    The operating system releases it when the process dies, however it dies, so a killed run can
    be resumed at once without clean-up. Under ``torchrun`` rank 0 holds it for the whole job.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_FILE
        self.handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                handle.close()
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderBusy(
                f"{self.path.parent} is being written by {holder}; wait for it to finish, or train into "
                "another --out folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        )
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
