"""Committed results of a study's training runs: one small JSON per run, so a study of many CPU-hours
survives the loss of its machine (issue #24).

A preset with ``Settings.keep_records`` writes, for every run it trains, ``RECORDS/<label>-<key>.json``
(``RECORDS`` = ``runs/`` beside the preset's notebook folders, committed with the figures): the run's
config, what it started from, its training history (command, steps, wall time, commit, machine of each part:
``RUN/history.jsonl``) and every evaluation of it the notebooks asked for, each with the sha256 of the
weights it sampled. Checkpoints stay out of git.

An evaluation is found again by the hash of everything that decides its numbers
(``evaluation.keys.evaluation_parts``) with the checkpoint named by *run key and step* instead of by its
weights' hash: the run key hashes the config and the init chain, and training is bitwise reproducible on
one CPU type (tests/test_train.py), so the same key and step are the same weights. A record therefore
answers before its run exists on this machine, and ``pyoco-lab reproduce`` trains only what no record holds.
To recompute everything, write the figures elsewhere (``--figures DIR``: its ``runs/`` starts empty).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pyoco_lab.evaluation.keys import key_name
from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.training import config_cli_args, ema_sha256, load_config, resolve_checkpoint
from pyoco_lab.training.checkpoints import read_history
from pyoco_lab.training.config import config_to_dict

RECORDS_FOLDER = "runs"  # beside the notebook folders of a preset's figures
RECORD_FORMAT = 1
SHA256 = re.compile(r"[0-9a-f]{64}")
# The fields the readers of a record use (find, experiments.measured_quality), by type: checked on each read.
RECORD_FIELDS = {"format": int, "label": str, "run_key": str, "config": dict, "evaluations": dict}
EVALUATION_FIELDS = {"step": int, "ema_sha256": str, "result": dict}
RESULT_FIELDS = {"generated": dict, "real-test": dict, "settings": dict}
SETTINGS_FIELDS = {"num_samples": int, "sampler": str, "num_steps": int, "seed": int, "num_real_test": int}


def read_record(path: str | os.PathLike) -> dict:
    """A committed run record, read strictly: anything but a record of :data:`RECORD_FORMAT` with every
    field its readers use, of the right type, raises a ValueError naming the file and the field."""
    data = read_json(path, "run record")

    def check(value: Any, fields: dict[str, type], where: str) -> None:
        if not isinstance(value, dict):
            raise ValueError(
                f"run record {path}: {where or 'the file'} is a JSON {type(value).__name__}, not an object; "
                f"{_RESTORE}"
            )
        for name, kind in fields.items():
            field = f"{where}.{name}" if where else name
            if name not in value:
                raise ValueError(f"run record {path}: field {field} is missing; {_RESTORE}")
            if not isinstance(value[name], kind) or isinstance(value[name], bool):
                raise ValueError(
                    f"run record {path}: field {field} is {json.dumps(value[name])[:40]}, not a JSON "
                    f"{'number' if kind is int else {str: 'string', dict: 'object'}[kind]}; {_RESTORE}"
                )

    check(data, RECORD_FIELDS, "")
    if data["format"] != RECORD_FORMAT:
        raise ValueError(
            f"run record {path}: field format is {data['format']}, this lab reads format {RECORD_FORMAT}; "
            "update pyoco-lab, or remake the record"
        )
    for key, entry in data["evaluations"].items():
        where = f"evaluations.{key}"
        check(entry, EVALUATION_FIELDS, where)
        if not SHA256.fullmatch(entry["ema_sha256"]):
            raise ValueError(f"run record {path}: field {where}.ema_sha256 is not a sha256; {_RESTORE}")
        check(entry["result"], RESULT_FIELDS, f"{where}.result")
        check(entry["result"]["settings"], SETTINGS_FIELDS, f"{where}.result.settings")
    return data


_RESTORE = "restore the file (git checkout it), or remove it and remake it with `pyoco-lab reproduce --runs`"


def check_store(
    store: str | os.PathLike, runs: list[tuple[str, str, list[Path]]], *, preset: str
) -> dict[str, int]:
    """What ``reproduce --from-records`` renders from, checked before any notebook runs: every record of the
    preset's ``runs`` ((label, run key, the run folders a cache may hold for it)) that ``store`` holds is
    read strictly, and must be that run's; an evaluation whose checkpoint is in one of those folders must
    have measured its weights. Raises when a record is bad, or when ``store`` holds none of them (nothing
    to render). Returns {"runs", "recorded", "compared", "not_compared"} (evaluations by weights' sha256)."""
    store = Path(store)
    counts = {"runs": len(runs), "recorded": 0, "compared": 0, "not_compared": 0}
    for label, run_key, folders in runs:
        path = record_path(store, label, run_key)
        if not path.is_file():
            continue
        record = read_record(path)
        if (record["label"], record["run_key"]) != (label, run_key):
            raise ValueError(
                f"run record {path} holds the record of {record['label']}-{record['run_key']}, not of "
                f"{label}-{run_key}; {_RESTORE}"
            )
        counts["recorded"] += 1
        for key, entry in record["evaluations"].items():
            step = f"step-{entry['step']:07d}"
            checkpoint = next(
                (f / "checkpoints" / step for f in folders if (f / "checkpoints" / step).is_dir()), None
            )
            if checkpoint is None:
                counts["not_compared"] += 1
            elif ema_sha256(checkpoint) == entry["ema_sha256"]:
                counts["compared"] += 1
            else:
                raise ValueError(
                    f"run record {path}: field evaluations.{key}.ema_sha256 is not the sha256 of the weights "
                    f"it names ({checkpoint}); {_RESTORE}"
                )
    if not counts["recorded"]:
        where = "does not exist" if not store.is_dir() else "holds no record of them"
        raise ValueError(
            f"nothing to render from records: {store} {where} (preset {preset} has {len(runs)} runs); make "
            f"them with `pyoco-lab reproduce --preset {preset} --runs`, or give the --figures whose runs/ "
            "holds them"
        )
    return counts


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
    entry = read_record(path)["evaluations"].get(lookup_key(parts, run_key, step))
    return entry["result"] if entry is not None else None


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
    record: dict[str, Any] = read_record(path) if path.is_file() else {}
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
