"""Never destroy, never mislead, part two (issue #44): one ownership rule for every command that writes
(``fileio.check_output_folder``), a shipped-model registry that an export cannot change by accident, run
records read strictly, and every failure one line before any work."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_notebooks import PARAMS, WRITE_OK, _notebook
from tiny_training import install_test_pieces, small_config

from pyoco_lab import reproduce as rp
from pyoco_lab import training as T
from pyoco_lab.analysis import image_model, presets, run_records, study_plans
from pyoco_lab.cli import main
from pyoco_lab.fileio import check_output_folder
from pyoco_lab.training import preset_config, pretrained

REPO = Path(__file__).resolve().parents[1]
COMMITTED_RECORDS = REPO / "figures" / "cpu-32" / "runs"
MUST_NOT_RUN = "raise SystemExit('this notebook must not run')"


@pytest.fixture(autouse=True)
def _pieces(monkeypatch):
    install_test_pieces(monkeypatch)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes): what must survive a refused command."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def video_run(tmp_path) -> Path:
    """A tiny finished video run (the test network): what generate samples, and what a tree of runs holds."""
    return T.train(small_config("video", steps=2), tmp_path / "video-run", progress=False)


def generate(run: Path, out: Path, *extra: str) -> int:
    return main(["generate", str(run), "--num", "1", "--steps", "2", "--out", str(out), *extra])


# ----------------------------------------------------------------------------------------------
# 1. --overwrite never reaches a training run, a checkpoint or run records, at any depth.


@pytest.mark.parametrize("inside", ["tree-of-five-runs", "run-checkpoints", "one-checkpoint", "records"])
def test_generate_overwrite_never_reaches_a_run_a_checkpoint_or_records_at_any_depth(
    inside, video_run, tmp_path, capsys
):
    tree = tmp_path / "tree"
    if inside == "tree-of-five-runs":  # runs two levels down, beside a user's notes
        for i in range(5):
            shutil.copytree(video_run, tree / f"group-{i % 2}" / f"run-{i}")
        (tree / "notes.txt").write_text("mine")
        out, protected = tree, tree / "group-0" / "run-0"
    elif inside == "run-checkpoints":
        shutil.copytree(video_run, tree / "run")
        out = protected = tree / "run" / "checkpoints"
    elif inside == "one-checkpoint":
        shutil.copytree(video_run, tree / "run")
        out = protected = T.latest_checkpoint(tree / "run")
    else:  # a figures folder holding the committed run records of a study
        records = tree / "figures" / "runs"
        records.mkdir(parents=True)
        shutil.copy(sorted(COMMITTED_RECORDS.glob("video-*.json"))[0], records)
        out, protected = tree, records
    before = snapshot(tree)
    assert generate(video_run, out, "--overwrite") == 2
    err = one_line(capsys)
    assert str(protected) in err and "--overwrite never replaces a run" in err
    assert snapshot(tree) == before
    assert not [p for p in out.parent.iterdir() if "staging" in p.name]  # no staging left either


def test_every_writer_shares_the_rule_curve_and_reproduce_too(video_run, tmp_path, monkeypatch, capsys):
    tree = tmp_path / "tree"
    shutil.copytree(video_run, tree / "a" / "b" / "run")
    before = snapshot(tree)
    argv = ["pretrained", "curve", str(video_run), "--out", str(tree), "--overwrite", "--num-samples", "16"]
    assert main(argv) == 2
    assert f"holds a training run ({tree / 'a' / 'b' / 'run'})" in one_line(capsys)
    # reproduce: a notebook's figures folder holding a run, refused before any notebook runs
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_x.ipynb", PARAMS, MUST_NOT_RUN)
    monkeypatch.setattr(rp, "default_notebooks_dir", lambda: notebooks)
    figures = tmp_path / "figures"
    shutil.copytree(tree, figures / "01_x")
    argv = ["reproduce", "--preset", "smoke", "--figures", str(figures), "--quiet", "--overwrite"]
    assert main(argv) == 2
    assert "holds a training run" in one_line(capsys) and snapshot(tree) == before
    assert snapshot(figures / "01_x") == before
    # the shared function, for invert's and every other command's folder (own output is still replaced)
    with pytest.raises(ValueError, match="holds a training run"):
        check_output_folder(tree, marker="invert.json", overwrite=True)
    own = tmp_path / "own"
    own.mkdir()
    (own / "invert.json").write_text("{}")
    check_output_folder(own, marker="invert.json", files=("maps.safetensors",))


# ----------------------------------------------------------------------------------------------
# 2. --plan follows the same rule: a user's submit.sh survives; (8) no command over an empty list.


def test_plan_never_replaces_a_users_file_and_replaces_its_own_plan(tmp_path, capsys):
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "submit.sh").write_text("my own job script\n")
    args = ["reproduce", "--preset", "cpu-32", "--cache", str(tmp_path / "cache"), "--plan"]
    assert main([*args, str(plan)]) == 2
    err = one_line(capsys)
    assert "submit.sh" in err and "--plan" in err
    assert snapshot(plan) == {"submit.sh": b"my own job script\n"}
    assert sorted(os.listdir(tmp_path)) == ["plan"]  # nothing written beside it either
    own = tmp_path / "own"
    for _ in range(2):  # its own earlier plan is replaced whole
        assert main([*args, str(own)]) == 0
    printed = capsys.readouterr().out
    # cpu-32 finetunes the shipped image model: no image runs, so no empty image_runs.txt to run
    assert sorted(os.listdir(own)) == ["plan.json", "slurm_array.sh", "submit.sh", "video_runs.txt"]
    assert "image_runs.txt" not in printed and f"bash {own / 'video_runs.txt'}" in printed
    assert "image=" not in (own / "submit.sh").read_text()


# ----------------------------------------------------------------------------------------------
# 3. A file is never turned into a folder.


def test_generate_never_turns_a_file_into_a_folder(video_run, tmp_path, capsys):
    mine = tmp_path / "mine.txt"
    mine.write_text("mine")
    for extra in ((), ("--overwrite",)):
        assert generate(video_run, mine, *extra) == 2
        assert "never replaced by a folder" in one_line(capsys)
        assert mine.is_file() and mine.read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["mine.txt", "video-run"]


# ----------------------------------------------------------------------------------------------
# 4. --init auto takes the default the registry marks, never the first model by name.


@pytest.fixture
def lab_registry(tmp_path, monkeypatch) -> Path:
    """The lab's own registry (not its weights) in a temporary weights folder."""
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(pretrained.WEIGHTS_DIR / pretrained.REGISTRY_FILE, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    return weights


def test_an_export_does_not_change_what_init_auto_picks(lab_registry):
    configs = [preset_config("quick", "video", resolution=r) for r in (16, 32)]
    before = [pretrained.default_for(c) for c in configs]
    assert before == ["pretrained:lab-tiny-16-256k", "pretrained:lab-tiny-32-256k"]
    for config in configs:  # a 4-step model of each resolution, named to sort first
        shipped = pretrained.get("lab-tiny-16-256k" if config.resolution == 16 else "lab-tiny-32-256k")
        weights = {"w": torch.zeros(2)}
        pretrained.export(weights, f"a-mine-{config.resolution}", shipped.train_config, recipe={"steps": 4})
    assert [pretrained.default_for(c) for c in configs] == before
    assert [m.name for m in pretrained.current_models()][:2] == ["lab-tiny-16-256k", "lab-tiny-32-256k"]


def test_export_changes_the_default_only_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    run = T.train(small_config("image", steps=2), tmp_path / "image", progress=False)
    config = small_config("video")

    def export(name, *extra):
        return main(["pretrained", "export", str(run), name, "--command", "pyoco-lab train (test)", *extra])

    assert export("first") == 0 and pretrained.default_for(config) is None  # not asked: no default
    assert export("zz-chosen", "--default") == 0
    assert "is the default for --init auto" in capsys.readouterr().out
    assert pretrained.default_for(config) == "pretrained:zz-chosen"
    assert export("a-mine") == 0 and pretrained.default_for(config) == "pretrained:zz-chosen"
    assert [m.name for m in pretrained.current_models()][0] == "zz-chosen"
    assert export("b-better", "--supersedes", "pretrained:zz-chosen") == 0  # asked: the default moves
    assert pretrained.default_for(config) == "pretrained:b-better"
    assert pretrained.get("zz-chosen").superseded_by == "b-better"
    entries = json.loads((tmp_path / "weights" / pretrained.REGISTRY_FILE).read_text())
    assert [name for name, entry in entries.items() if entry.get("default")] == ["b-better"]


# ----------------------------------------------------------------------------------------------
# 5. Export names: a pattern, no prefix, no path.


@pytest.mark.parametrize("name", ["pretrained:tiny", "", "../escape", "a/b", ".hidden", "x" * 65])
def test_export_refuses_a_name_that_is_not_a_plain_name(name, tmp_path, monkeypatch, capsys):
    weights = tmp_path / "pkg" / "weights"
    weights.parent.mkdir()
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    run = T.train(small_config("image", steps=2), tmp_path / "image", progress=False)
    assert main(["pretrained", "export", str(run), name, "--command", "x"]) == 2
    err = one_line(capsys)
    assert ("without the pretrained: prefix" if name.startswith("pretrained:") else "cannot name") in err
    assert not weights.exists() and sorted(os.listdir(tmp_path / "pkg")) == []
    assert not list(tmp_path.glob("*.safetensors"))


# ----------------------------------------------------------------------------------------------
# 6 and 7. --from-records: nothing usable stops in one line before any work; records read strictly.


@pytest.fixture
def from_records(tmp_path, monkeypatch):
    """`reproduce --preset cpu-32 --from-records` over a notebook that must not run (a records problem must
    stop it first), into tmp_path/figures with an empty cache."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "04_x.ipynb", PARAMS, MUST_NOT_RUN)
    monkeypatch.setattr(rp, "default_notebooks_dir", lambda: notebooks)
    figures = tmp_path / "figures"
    argv = ["reproduce", "--preset", "cpu-32", "--from-records", "--quiet", "--figures", str(figures)]
    return figures, [*argv, "--cache", str(tmp_path / "cache")]


def first_record() -> Path:
    return sorted(COMMITTED_RECORDS.glob("video-*.json"))[0]


@pytest.mark.parametrize("store", ["missing", "empty"])
def test_from_records_with_no_records_stops_before_any_work(store, from_records, capsys):
    figures, argv = from_records
    if store == "empty":
        (figures / "runs").mkdir(parents=True)
    assert main(argv) == 2
    err = one_line(capsys)
    assert "nothing to render from records" in err and str(figures / "runs") in err and "--runs" in err


@pytest.mark.parametrize(
    "content, says",
    [
        ([1, 2], "is a JSON list, not an object"),
        ({"value": 1.0}, "field format is missing"),
        ("no-settings", ".result.settings is missing"),
        ("another-run", "holds the record of"),
    ],
)
def test_from_records_reads_records_strictly_naming_file_and_field(content, says, from_records, capsys):
    figures, argv = from_records
    record = figures / "runs" / first_record().name
    record.parent.mkdir(parents=True)
    if content == "no-settings":
        data = json.loads(first_record().read_text())
        for entry in data["evaluations"].values():
            del entry["result"]["settings"]
        content = data
    elif content == "another-run":  # another run's record under this run's name
        content = json.loads(sorted(COMMITTED_RECORDS.glob("video-*.json"))[1].read_text())
    record.write_text(json.dumps(content))
    assert main(argv) == 2
    err = one_line(capsys)
    assert str(record) in err and says in err


def test_a_records_sha256_is_compared_with_weights_in_the_cache_else_said_not_comparable(
    from_records, tmp_path, capsys
):
    figures, argv = from_records
    store = figures / "runs"
    store.mkdir(parents=True)
    record = store / first_record().name
    data = json.loads(first_record().read_text())
    key, entry = next(iter(data["evaluations"].items()))
    entry["ema_sha256"] = "0" * 64  # edited
    record.write_text(json.dumps(data))
    # the weights are in the cache: the edit is caught, naming the field
    s = presets.settings("cpu-32")
    spec = next(spec for spec, _ in study_plans.evaluation_plan(s) if spec.label == data["label"])
    checkpoint = T.checkpoint_dir(spec.folder(tmp_path / "cache"), entry["step"])
    checkpoint.mkdir(parents=True)
    (checkpoint / T.EMA_FILE).write_bytes(b"some weights")
    assert main(argv) == 2
    assert f"field evaluations.{key}.ema_sha256 is not the sha256 of the weights" in one_line(capsys)
    # without the weights it cannot be compared: said so, in one line, before the notebooks
    shutil.rmtree(tmp_path / "cache")
    rp_notebook = tmp_path / "notebooks" / "04_x.ipynb"
    rp_notebook.unlink()
    _notebook(rp_notebook, PARAMS, WRITE_OK.replace("NAME", "04_x"))
    assert main(argv) == 0
    assert "cannot be compared without the weights" in capsys.readouterr().err


def test_export_record_is_read_strictly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    run = T.train(small_config("image", steps=2), tmp_path / "image", progress=False)
    record = tmp_path / "record.json"
    data = json.loads(first_record().read_text())
    for entry in data["evaluations"].values():
        del entry["result"]["settings"]
    for content, says in (([data], "is a JSON list, not an object"), (data, ".result.settings is missing")):
        record.write_text(json.dumps(content))
        argv = ["pretrained", "export", str(run), "tiny", "--command", "x", "--record", str(record)]
        assert main(argv) == 2
        err = one_line(capsys)
        assert str(record) in err and says in err
    assert "tiny" not in pretrained.registry()
    assert run_records.read_record(first_record())["label"]  # the committed records pass


# ----------------------------------------------------------------------------------------------
# 7. Ctrl-C during reproduce: "interrupted", no kernel traceback.

INTERRUPTED = """
import signal
import sys
from pathlib import Path
# Ctrl-C as a shell delivers it: a process started with SIGINT ignored (as an earlier test of the same pytest
# process may leave it) never raises KeyboardInterrupt, and its children inherit that
signal.signal(signal.SIGINT, signal.default_int_handler)
from test_notebooks import PARAMS, _notebook
from pyoco_lab import reproduce as rp
from pyoco_lab.cli import main
notebooks = Path(sys.argv[1])
sleep = "import time\\nprint('sleeping', flush=True)\\ntime.sleep(120)"
_notebook(notebooks / "01_sleep.ipynb", PARAMS, sleep)
rp.default_notebooks_dir = lambda: notebooks
sys.exit(main(["reproduce", "--preset", "smoke", "--figures", sys.argv[2], "--cache", sys.argv[3]]))
"""


def test_ctrl_c_during_reproduce_prints_one_line_and_no_kernel_traceback(tmp_path):
    notebooks, figures = tmp_path / "notebooks", tmp_path / "figures"
    notebooks.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(INTERRUPTED),
            str(notebooks),
            str(figures),
            str(tmp_path / "c"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the Ctrl-C goes to it, not to pytest
    )
    lines = []
    for line in child.stderr:  # the kernel runs the cell: Ctrl-C now
        lines.append(line)
        if "sleeping" in line:
            break
    os.killpg(child.pid, signal.SIGINT)
    rest = child.stderr.read()
    err = "".join(lines) + rest
    assert child.wait(timeout=120) == 130, err
    assert "Traceback" not in rest and "ZMQError" not in rest and "Task exception" not in rest, rest
    assert "pyoco-lab reproduce: interrupted" in rest
    assert not figures.exists(), err  # nothing half-written, no staging folder: the folder it made is gone


# ----------------------------------------------------------------------------------------------
# 8. One line, the right command name, every bad file, checked before the work.


def test_an_export_error_names_the_command_not_the_command_option(tmp_path, capsys):
    argv = [
        "pretrained",
        "export",
        str(tmp_path / "missing"),
        "tiny",
        "--command",
        "pyoco-lab train --preset quick",
    ]
    assert main(argv) == 2
    assert one_line(capsys).startswith("pyoco-lab pretrained: error:")


def test_verify_reports_every_bad_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    run = T.train(small_config("image", steps=2), tmp_path / "image", progress=False)
    for name in ("good", "gone", "edited", "also-gone"):
        assert main(["pretrained", "export", str(run), name, "--command", "x"]) == 0
    for name in ("gone", "also-gone"):
        pretrained.get(name).path.unlink()
    edited = pretrained.get("edited").path
    edited.write_bytes(edited.read_bytes()[:-1] + b"\0")
    capsys.readouterr()
    assert main(["pretrained", "verify"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "3 of 4" in err
    for name in ("gone", "edited", "also-gone"):
        assert f"pretrained:{name}" in err and f"bad: pretrained:{name}" in captured.out
    assert "ok: pretrained:good" in captured.out


@pytest.mark.parametrize(
    "argv, says",
    [
        (["lab-tiny-16-256k", "--num-samples", "0"], "--num-samples 0 is too few"),
        (["lab-tiny-16-256k", "--num-samples", "-5"], "--num-samples -5 is too few"),
        (["lab-tiny-16-256k", "--num-samples", "1"], "--num-samples 1 is too few"),
        (["lab-tiny-16-256k", "--inversion-steps", "1"], "--inversion-steps must be at least 2"),
        (["zoo-32-iid"], "is a video model"),
    ],
)
def test_measure_refuses_bad_input_before_any_work(argv, says, monkeypatch, capsys):
    def never(*args, **kwargs):
        raise AssertionError("measured before checking its input")

    monkeypatch.setattr(image_model, "image_model_quality", never)
    monkeypatch.setattr(image_model, "inversion_quality", never)
    assert main(["pretrained", "measure", *argv, "--no-write", "--no-progress"]) == 2
    assert says in one_line(capsys)


def test_reproduce_refuses_a_cache_that_is_a_file_before_any_notebook(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_x.ipynb", PARAMS, MUST_NOT_RUN)
    monkeypatch.setattr(rp, "default_notebooks_dir", lambda: notebooks)
    cache = tmp_path / "cache"
    cache.write_text("a file")
    argv = ["reproduce", "--preset", "smoke", "--figures", str(tmp_path / "f"), "--quiet", "--cache"]
    assert main([*argv, str(cache)]) == 2
    err = one_line(capsys)
    assert "--cache" in err and "is a file" in err and cache.read_text() == "a file"
    assert main([*argv, str(cache / "below")]) == 2  # a folder under a file
    assert "lies under the file" in one_line(capsys)


def test_a_killed_reproduces_staging_folders_are_cleaned(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", PARAMS, WRITE_OK.replace("NAME", "01_ok"))
    figures = tmp_path / "figures"
    stale = [figures / ".01_ok.staging-dead", figures / ".staging-01_ok-dead"]  # this version's, the older
    for folder in stale:
        folder.mkdir(parents=True)
        (folder / "figure.png").write_bytes(b"half")
    rp.reproduce(
        "smoke", figures_dir=figures, cache_dir=tmp_path / "c", notebooks_dir=notebooks, progress=False
    )
    assert sorted(p.name for p in figures.iterdir()) == ["01_ok", "SUMMARY.md"]
    assert (figures / "01_ok" / "figure.png").read_bytes() == b"new"
