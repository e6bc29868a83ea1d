"""The CLI's error contract: a fixable error is one line naming the file and the fix (exit 2);
``pyoco-lab --debug ...`` shows the traceback instead."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyoco_lab import cli

REPO = Path(__file__).resolve().parents[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def read_only(tmp_path, monkeypatch, request):
    """A folder that cannot be written: ``os.mkdir`` under it raises the OSError a read-only file
    system, a full disk or a permission check raises (simulated: CI runs as root, where chmod does
    not stop writes, and no test may depend on the machine's mounts)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    how = request.param
    code = {"read-only": errno.EROFS, "full": errno.ENOSPC, "denied": errno.EACCES}[how]
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(folder)):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    yield folder, how
    folder.chmod(0o700)


EXPECTED = {
    "denied": "Permission denied",
    "read-only": "Read-only file system",
    "full": "No space left",
}


@pytest.mark.parametrize("read_only", ["denied", "read-only", "full"], indirect=True)
def test_unwritable_data_root_is_one_line_naming_it_and_the_fix(read_only, capsys):
    folder, how = read_only
    code = cli.main(["data", "build", "--root", str(folder / "data"), "--resolutions", "32", "--quiet"])
    line = _one_line(capsys)
    assert code == 2, line
    assert line.startswith("pyoco-lab data: error: cannot ")
    assert str(folder) in line and EXPECTED[how] in line, line
    assert "--root" in line and "PYOCO_DATA" in line  # the fix


@pytest.mark.parametrize("read_only", ["denied", "read-only"], indirect=True)
def test_unwritable_run_folder_is_one_line_naming_it(read_only, capsys):
    folder, how = read_only
    code = cli.main(["train", "--out", str(folder / "run"), "--steps", "1", "--no-progress"])
    line = _one_line(capsys)
    assert code == 2 and str(folder) in line and EXPECTED[how] in line, line
    assert "--out" in line and "PYOCO_RUNS" in line


def test_garbage_manifest_is_one_line_naming_the_file(tmp_path, capsys):
    manifest = tmp_path / "embedded" / "v1" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"format_version": 1, "resolutions": [3')  # a write cut short
    assert cli.main(["data", "info", "--root", str(tmp_path)]) == 2
    line = _one_line(capsys)
    assert str(manifest) in line and "not valid JSON" in line and "pyoco-lab data build" in line, line
    manifest.write_text("[1, 2, 3]")  # valid JSON, not a manifest
    assert cli.main(["data", "info", "--root", str(tmp_path)]) == 2
    line = _one_line(capsys)
    assert str(manifest) in line and "not a manifest" in line, line


def test_debug_shows_the_traceback(tmp_path, capsys):
    manifest = tmp_path / "embedded" / "v1" / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{garbage")
    with pytest.raises(ValueError, match="manifest.json"):
        cli.main(["--debug", "data", "info", "--root", str(tmp_path)])
    # and as a real process: a traceback on stderr, not the one line
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pyoco_lab.cli"]
    shown = subprocess.run(
        [*command, "--debug", "data", "info", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert shown.returncode == 1 and "Traceback (most recent call last)" in shown.stderr, shown.stderr
    assert str(manifest) in shown.stderr
    short = subprocess.run(
        [*command, "data", "info", "--root", str(tmp_path)], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert short.returncode == 2 and "Traceback" not in short.stderr
    assert len(short.stderr.strip().splitlines()) == 1 and str(manifest) in short.stderr


def test_raw_json_and_os_errors_never_reach_the_user_as_tracebacks(monkeypatch, capsys):
    from pyoco_lab.commands import noise as noise_command

    def raise_(error):
        def run(args):
            raise error

        return run

    cases = [
        (json.JSONDecodeError("Expecting value", "", 0), "not valid JSON", "--debug"),
        (OSError(errno.EIO, "Input/output error", "/x/y.npy"), "/x/y.npy: Input/output error", None),
        (PermissionError(errno.EACCES, "Permission denied", "/x/y"), "cannot access /x/y", "permissions"),
        (OSError(errno.ENOSPC, "No space left on device", "/x/z"), "cannot write /x/z", "free some space"),
        (ValueError("first line\n  second line"), "first line second line", None),
    ]
    for error, expected, fix in cases:
        monkeypatch.setattr(noise_command, "run", raise_(error))
        assert cli.main(["noise"]) == 2
        line = _one_line(capsys)
        assert expected in line and (fix is None or fix in line), line
    monkeypatch.setattr(noise_command, "run", raise_(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # not a user error: the traceback shows
        cli.main(["noise"])


def test_runs_never_default_into_an_installed_package(tmp_path, monkeypatch):
    """A non-editable install (the package outside a clone) writes runs and caches under the current
    directory, not into site-packages; a clone keeps its runs/; $PYOCO_RUNS wins over both."""
    from pyoco_lab import reproduce
    from pyoco_lab.training import checkpoints

    clone_runs = checkpoints.default_runs_root()
    assert clone_runs == Path(checkpoints.__file__).resolve().parents[2] / "runs"
    site = tmp_path / "site-packages"
    (site / "pyoco_lab" / "training").mkdir(parents=True)
    installed = site / "pyoco_lab" / "training" / "checkpoints.py"
    monkeypatch.setattr(checkpoints, "__file__", str(installed))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("PYOCO_RUNS", raising=False)
    assert checkpoints.default_runs_root() == work / "runs"
    monkeypatch.setattr(reproduce, "REPO_ROOT", site)
    assert reproduce.default_cache_dir() == work / "runs" / "reproduce"
    assert reproduce.default_figures_dir("quick") == work / "figures"
    monkeypatch.setenv("PYOCO_RUNS", str(tmp_path / "mine"))
    assert checkpoints.default_runs_root() == tmp_path / "mine"


def test_missing_ucf101_is_refused_before_the_run_folder_exists(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--dataset", "ucf101", "--data-root", str(tmp_path / "no-data"), "--out", str(run)]
    assert cli.main([*args, "--steps", "1", "--no-progress"]) == 2
    assert "no UCF-101 videos" in capsys.readouterr().err
    assert not run.exists()  # no empty folder with a .lock left behind (docs/training.md)


def test_a_slurm_plan_runs_through_bash_without_activating_the_environment(tmp_path):
    """`reproduce --plan` records the interpreter that wrote it: its lines run from a shell whose PATH has
    no venv (the README's `.venv/bin/pyoco-lab`), through slurm_array.sh as a Slurm task would."""
    plan = tmp_path / "plan"
    args = ["reproduce", "--preset", "ucf", "--cache", str(tmp_path / "c"), "--plan", str(plan)]
    assert cli.main(args) == 0
    script = (plan / "slurm_array.sh").read_text()
    for option in ("--time=2-00:00:00", "--cpus-per-task=9", "--requeue", "--signal=B:USR1@"):
        assert f"#SBATCH {option}" in script, option  # 8 data workers + the trainer; requeue before the limit
    assert "scontrol requeue" in script
    line = (plan / "image_runs.txt").read_text().splitlines()[0]
    assert line.startswith(f"${{PYOCO_PYTHON:-{sys.executable}}} -m torch.distributed.run")
    assert json.loads((plan / "plan.json").read_text())["python"] == sys.executable
    runs = plan / "help_runs.txt"  # the plan's own first line, asking train for its help (no training)
    runs.write_text(line + " --help\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GPUS": "1",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_ARRAY_JOB_ID": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    task = ["bash", str(plan / "slurm_array.sh"), str(runs)]
    done = subprocess.run(task, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: pyoco-lab train" in done.stdout


def test_evaluate_of_a_shipped_model_names_an_option_not_a_library_argument(capsys):
    assert cli.main(["evaluate", "pretrained:lab-tiny-16", "--device", "cpu"]) == 2
    line = _one_line(capsys)
    assert "store_dir" not in line and "run folder" in line and "--init pretrained:lab-tiny-16" in line
