"""Fault injection: kills at every dangerous moment, corrupt and missing files, two writers.

The promise under test (docs/training.md, "Resume and locking"): ``--resume`` continues from the
newest intact checkpoint and ends bitwise identical to an uninterrupted run; it never restarts
from step 0 or deletes a checkpoint it could not read; when nothing is intact it refuses and
changes nothing; one process at a time writes a run folder.
"""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_training import CLI_ARGS, install_test_pieces, run_cli, small_config

from pyoco_lab import training as T
from pyoco_lab.data import embedded
from pyoco_lab.training import checkpoints
from pyoco_lab.training.batches import build_datasets
from pyoco_lab.training.config import preset_config


@pytest.fixture(autouse=True)
def _pieces(monkeypatch):
    install_test_pieces(monkeypatch)


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    ema = {f"ema.{k}": v for k, v in load_file(str(checkpoint / T.EMA_FILE)).items()}
    return {**load_file(str(checkpoint / T.MODEL_FILE)), **ema}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def log_rows(run: Path) -> list[tuple[str, ...]]:
    """log.csv without the timing columns (those differ between any two runs)."""
    with open(run / "log.csv") as handle:
        return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in csv.DictReader(handle)]


# ----------------------------------------------------------------------------------------------
# SIGKILL at several points of a real CLI run, then --resume: bitwise identical to no kill.


def run_args(steps: int = 16, checkpoint_every: int = 4, precision: str = "fp32") -> list[str]:
    return [
        "train",
        "--phase",
        "video",
        *CLI_ARGS,
        "--precision",
        precision,
        "--steps",
        str(steps),
        "--checkpoint-every",
        str(checkpoint_every),
        "--keep-checkpoints",
        "2",
        "--joint-images",
        "1",
        "--noise",
        "mixed",
        "--alpha",
        "1",
        "--from-scratch",
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    assert run_cli(*run_args(), "--out", str(run)).wait(timeout=300) == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["step:10", "checkpoint:12", "pointer:12", "prune:12"])
def test_kill_then_resume_is_bitwise_identical(fault, reference, tmp_path):
    run = tmp_path / "run"
    victim = run_cli(*run_args(), "--out", str(run), fault=fault, stderr=subprocess.DEVNULL)
    assert victim.wait(timeout=300) == -signal.SIGKILL, "the fault did not fire"
    killed_at = checkpoints.checkpoint_step(T.latest_checkpoint(run))
    assert 4 <= killed_at < 16
    resumed = run_cli(*run_args(), "--out", str(run), "--resume", stderr=subprocess.PIPE, text=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert_same_weights(T.latest_checkpoint(reference), T.latest_checkpoint(run))
    assert log_rows(run) == log_rows(reference)
    assert not list((run / "checkpoints").glob(".tmp-*")), "a dead writer's temporary folder was left"
    assert [p.name for p in checkpoints.checkpoint_folders(run)] == ["step-0000016", "step-0000012"]


@pytest.fixture(scope="module")
def bf16_reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("bf16-reference") / "run"
    assert run_cli(*run_args(precision="bf16"), "--out", str(run)).wait(timeout=300) == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["step:10", "checkpoint:12"])
def test_bf16_kill_then_resume_is_bitwise_identical(fault, bf16_reference, tmp_path):
    """The same promise under --precision bf16 on the CPU (issue #23): autocast adds no state to save."""
    run = tmp_path / "run"
    args = run_args(precision="bf16")
    victim = run_cli(*args, "--out", str(run), fault=fault, stderr=subprocess.DEVNULL)
    assert victim.wait(timeout=300) == -signal.SIGKILL, "the fault did not fire"
    assert 4 <= checkpoints.checkpoint_step(T.latest_checkpoint(run)) < 16
    resumed = run_cli(*args, "--out", str(run), "--resume", stderr=subprocess.PIPE, text=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert_same_weights(T.latest_checkpoint(bf16_reference), T.latest_checkpoint(run))
    assert log_rows(run) == log_rows(bf16_reference)


# ----------------------------------------------------------------------------------------------
# Missing and corrupt files, in-process (seconds each).


def _unfinished(tmp_path: Path) -> Path:
    """A run stopped after step 4 of 6: checkpoints step-2 and step-4, latest.json -> step-4."""
    run = T.train(small_config("image", steps=4, keep_checkpoints=10), tmp_path / "run", progress=False)
    assert [p.name for p in checkpoints.checkpoint_folders(run)] == ["step-0000004", "step-0000002"]
    return run


@pytest.fixture
def finished_reference(tmp_path) -> Path:
    return T.latest_checkpoint(
        T.train(small_config("image", steps=6), tmp_path / "reference", progress=False)
    )


def _resume(run: Path) -> Path:
    return T.train(small_config("image", steps=6, keep_checkpoints=10), run, resume=True, progress=False)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(None, id="newest-gone"),
        pytest.param(T.MODEL_FILE, id="model-truncated"),
        pytest.param(T.EMA_FILE, id="ema-truncated"),
        pytest.param(T.STATE_FILE, id="state-truncated"),
    ],
)
def test_resume_falls_back_to_the_newest_intact_checkpoint(damage, tmp_path, finished_reference, capsys):
    run = _unfinished(tmp_path)
    older = run / "checkpoints" / "step-0000002" / T.STATE_FILE
    stamp = older.stat().st_mtime_ns
    newest = run / "checkpoints" / "step-0000004"
    if damage is None:
        shutil.rmtree(newest)
    else:
        _truncate(newest / damage)
    _resume(run)
    err = capsys.readouterr().err
    assert "resuming" in err and "step-0000002" in err
    assert older.stat().st_mtime_ns == stamp, "the intact older checkpoint was rewritten: the run restarted"
    assert_same_weights(finished_reference, T.latest_checkpoint(run))
    kept = [p.name for p in (run / "checkpoints").glob("unreadable-*")]
    if damage is not None:  # the unreadable checkpoint is kept aside, never deleted
        assert len(kept) == 1 and kept[0].startswith("unreadable-step-0000004")
        assert (run / "checkpoints" / kept[0] / damage).is_file()


def test_garbage_latest_pointer_is_ignored(tmp_path, finished_reference):
    run = _unfinished(tmp_path)
    (run / "checkpoints" / T.LATEST_FILE).write_text("{not json")
    _resume(run)
    assert_same_weights(finished_reference, T.latest_checkpoint(run))


def test_bit_flip_is_caught_by_the_hash(tmp_path, finished_reference, capsys):
    run = _unfinished(tmp_path)
    path = run / "checkpoints" / "step-0000004" / T.MODEL_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, different weights: only the sha256 can tell
    path.write_bytes(bytes(data))
    _resume(run)
    assert "sha256" in capsys.readouterr().err
    assert_same_weights(finished_reference, T.latest_checkpoint(run))


@pytest.mark.parametrize("pointer_only", [True, False])
def test_no_intact_checkpoint_refuses_and_changes_nothing(tmp_path, pointer_only):
    run = _unfinished(tmp_path)
    if pointer_only:  # latest.json names a folder that is gone, and no other checkpoint exists
        for folder in checkpoints.checkpoint_folders(run):
            shutil.rmtree(folder)
    else:  # every checkpoint is damaged
        for folder in checkpoints.checkpoint_folders(run):
            _truncate(folder / T.MODEL_FILE)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(ValueError, match="no intact checkpoint.*nothing was changed"):
        _resume(run)
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


def test_evaluation_loads_the_newest_intact_checkpoint(tmp_path):
    run = _unfinished(tmp_path)
    _truncate(run / "checkpoints" / "step-0000004" / T.EMA_FILE)
    assert T.latest_checkpoint(run).name == "step-0000002"
    T.load_denoiser(run)  # loads, from step 2


# ----------------------------------------------------------------------------------------------
# One writer per run folder.


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    run = tmp_path / "run"
    args = [*run_args(steps=100_000, checkpoint_every=2), "--out", str(run)]
    first = run_cli(*args, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while T.latest_checkpoint(run) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first writer ended too early"
        second = run_cli(*args, "--resume", stderr=subprocess.PIPE, text=True)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and "is being written by pid" in err, err
        # in-process too, with the same message
        with pytest.raises(T.RunFolderBusy, match=f"pid {first.pid}"):
            T.train(T.load_config(run), run, resume=True, progress=False)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the OS dropped the dead process's lock: resume starts at once, no clean-up needed
    soon = checkpoints.checkpoint_step(T.latest_checkpoint(run)) + 2
    resumed = run_cli(*args, "--resume", "--steps", str(soon))
    assert resumed.wait(timeout=300) == 0


def test_no_progress_also_hides_the_embedded_dataset_build(tmp_path, monkeypatch):
    seen = []

    def build(root, resolutions, progress=True, **kwargs):
        seen.append(progress)
        raise RuntimeError("stop here")

    monkeypatch.setattr(embedded, "build_embedded_dataset", build)
    config = preset_config("quick", "image", data_root=str(tmp_path / "empty"))
    for progress in (False, True):
        with pytest.raises(RuntimeError, match="stop here"):
            build_datasets(config, build_missing=True, progress=progress)
    assert seen == [False, True]
