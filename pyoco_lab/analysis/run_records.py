"""Committed results of a study's training runs: one small JSON per run, so a study of many CPU-hours
survives the loss of its machine (issue #24).

A preset with ``Settings.keep_records`` writes, for every run it trains, ``RECORDS/<label>-<key>.json``
(``RECORDS`` = ``runs/`` beside the preset's notebook folders, committed with the figures): the run's
config, what it started from, its training history (command, steps, wall time, commit, machine of each part:
``RUN/history.jsonl``) and every evaluation of it the notebooks asked for, each with the sha256 of the
weights it sampled. Checkpoints stay out of git.

An evaluation is found again by the hash of everything that decides its numbers
(``metrics.evaluate.evaluation_parts``) with the checkpoint named by *run key and step* instead of by its
weights' hash: the run key hashes the config and the init chain, and training is bitwise reproducible on
one CPU type (tests/test_train.py), so the same key and step are the same weights. A record therefore
answers before its run exists on this machine, and ``pyoco-lab reproduce`` trains only what no record holds.
To recompute everything, write the figures elsewhere (``--figures DIR``: its ``runs/`` starts empty).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.metrics.evaluate import ema_sha256, key_name
from pyoco_lab.training import config_cli_args, load_config, resolve_checkpoint
from pyoco_lab.training.checkpoints import read_history
from pyoco_lab.training.config import config_to_dict

RECORDS_FOLDER = "runs"  # beside the notebook folders of a preset's figures
RECORD_FORMAT = 1


def record_path(store: str | os.PathLike, label: str, run_key: str) -> Path:
    """``STORE/<label>-<key>.json``: the run folder's own name, so a record and its run are found alike."""
    return Path(store) / f"{label}-{run_key}.json"


def lookup_key(parts: dict, run_key: str, step: int) -> str:
    """The evaluation's name in a record: ``evaluation_parts`` with the checkpoint named by run and step."""
    return key_name({**parts, "checkpoint": {"run": run_key, "step": int(step)}})


def find(store: str | os.PathLike, label: str, run_key: str, parts: dict, step: int) -> dict | None:
    """The committed result of this evaluation (as ``evaluate_run`` returned it), or None."""
    path = record_path(store, label, run_key)
    if not path.is_file():
        return None
    record = read_json(path, "run record")
    entry = record.get("evaluations", {}).get(lookup_key(parts, run_key, step))
    return entry["result"] if isinstance(entry, dict) and "generated" in entry.get("result", {}) else None


def add(
    store: str | os.PathLike,
    label: str,
    run_key: str,
    run_dir: str | os.PathLike,
    init: str | None,
    parts: dict,
    step: int,
    result: dict,
) -> Path:
    """Write (or extend) the record of the run in ``run_dir`` with one evaluation of its ``step``.

    The run's config and history are taken from the folder each time, so a record written after a
    resumed part carries every part. Written atomically: a reader never sees half a record.
    """
    checkpoint, run_dir = resolve_checkpoint(Path(run_dir) / "checkpoints" / f"step-{int(step):07d}")
    path = record_path(store, label, run_key)
    record: dict[str, Any] = read_json(path, "run record") if path.is_file() else {}
    history = read_history(run_dir)
    config = load_config(run_dir)
    record.update(
        {
            "format": RECORD_FORMAT,
            "label": label,
            "run_key": run_key,
            "init": init,
            "config": config_to_dict(config),
            "train_args": config_cli_args(config),  # `pyoco-lab train` flags (--out, --init aside)
            "history": history,
            "train_wall_seconds": round(sum(float(part.get("wall_seconds") or 0.0) for part in history), 1),
        }
    )
    evaluations = record.setdefault("evaluations", {})
    evaluations[lookup_key(parts, run_key, step)] = {
        "step": int(step),
        "ema_sha256": ema_sha256(checkpoint),
        "result": result,
    }
    Path(store).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path
