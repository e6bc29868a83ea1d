"""Shipped image models: exported from a run, loaded by name, refused when the file is not the one
recorded; finetuning starts from them; the lab's own shipped models verify."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_training import install_test_pieces, small_config

from pyoco_lab import cli
from pyoco_lab import training as T
from pyoco_lab.analysis import study_runs
from pyoco_lab.commands import pretrained as command
from pyoco_lab.fileio import sha256_file
from pyoco_lab.training import pretrained
from pyoco_lab.viz.explorer import Explorer


@pytest.fixture(autouse=True)
def _pieces(monkeypatch):
    install_test_pieces(monkeypatch)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A tiny image run exported as pretrained:tiny-test, the default for --init auto of its kind, into a
    temporary weights folder."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    run = T.train(small_config("image", steps=4), tmp_path / "image", progress=False)
    argv = [
        "pretrained",
        "export",
        str(run),
        "tiny-test",
        "--command",
        "pyoco-lab train ... (test)",
        "--default",
    ]
    assert cli.main(argv) == 0
    return run, pretrained.get("pretrained:tiny-test")


def test_export_records_hash_config_and_recipe(shipped, capsys):
    run, model = shipped
    again = ["pretrained", "export", str(run), "tiny-test", "--command", "x"]
    assert cli.main(again) == 2 and "already ships" in capsys.readouterr().err  # never replaced unasked
    assert pretrained.get("tiny-test").recipe["command"] == "pyoco-lab train ... (test)"
    assert model.path.is_file() and model.sha256 == sha256_file(model.path)
    assert model.train_config == T.load_config(run)
    assert model.recipe["steps"] == 4 and model.recipe["seed"] == 0 and model.recipe["command"]
    assert model.recipe["wall_seconds"] >= 0 and "CPU cores" in model.recipe["machine"]
    # every part of the run (here one library call) is recorded: what made each step
    (part,) = model.recipe["history"]
    assert (part["from_step"], part["to_step"]) == (0, 4) and part["commit"] == model.recipe["commit"]
    ema = load_file(str(T.latest_checkpoint(run) / T.EMA_FILE))
    assert all(torch.equal(ema[k], v) for k, v in load_file(str(model.path)).items())


def test_load_by_name_gives_the_runs_ema_weights(shipped):
    run, _ = shipped
    by_name, config = T.load_denoiser("pretrained:tiny-test")
    by_run, _ = T.load_denoiser(run)
    assert config.phase == "image" and not by_name.training
    for (k, a), (_, b) in zip(by_name.state_dict().items(), by_run.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_a_corrupted_weights_file_is_refused_naming_the_fix(shipped, capsys):
    _, model = shipped
    data = bytearray(model.path.read_bytes())
    data[-3] ^= 0x01
    model.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted.*sha256.*re-create it: pyoco-lab train"):
        T.load_denoiser("pretrained:tiny-test")
    assert cli.main(["pretrained", "verify"]) == 2
    assert "corrupted" in capsys.readouterr().err


def test_unknown_name_lists_the_shipped_ones(shipped):
    with pytest.raises(ValueError, match="unknown pretrained model pretrained:nope.*pretrained:tiny-test"):
        T.load_denoiser("pretrained:nope")


def test_finetune_from_a_shipped_model(shipped, tmp_path):
    _, model = shipped
    video = T.train(
        small_config("video", steps=2), tmp_path / "video", init="pretrained:tiny-test", progress=False
    )
    meta = json.loads((video / "config.json").read_text())
    assert meta["init"] == f"pretrained:tiny-test@{model.sha256[:16]}"
    # the same call finds the finished run (the init record matches), no retraining
    assert (
        T.train(small_config("video", steps=2), video, init="pretrained:tiny-test", progress=False) == video
    )


def test_init_auto_prefers_a_shipped_model_that_fits(shipped):
    _, model = shipped
    assert pretrained.default_for(small_config("video")) == "pretrained:tiny-test"
    assert pretrained.default_for(small_config("video", model="tiny-wide")) is None


def test_the_labs_shipped_models_verify():
    models = pretrained.registry()
    assert "lab-tiny-16-256k" in models, "the quick preset's image model must ship with the lab"
    assert {"lab-tiny-16", "lab-tiny-32"} <= set(models)  # superseded, kept: committed results name them
    for model in models.values():
        pretrained.verify(model)
        # the lab command that re-creates it: train (image models), the study that trains it (the alpha zoo)
        assert model.recipe.get("command", "").startswith(("pyoco-lab train", "pyoco-lab reproduce --preset"))
    assert command.run_verify(None) == 0


def test_the_registry_is_valid_json_with_inf_as_a_string(shipped):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    _, model = shipped  # exported into a temporary WEIGHTS_DIR; the lab's own registry is beside the module
    lab = Path(pretrained.__file__).resolve().parents[1] / "weights" / pretrained.REGISTRY_FILE
    for path in (model.path.parent / pretrained.REGISTRY_FILE, lab):
        entries = json.loads(path.read_text(), parse_constant=refuse)  # strict: no Infinity / NaN
        for entry in entries.values():
            assert entry["config"]["sample_churn_tmax"] == "inf"
    assert model.train_config.sample_churn_tmax == float("inf")


def test_list_is_a_table_and_long_shows_every_part_of_the_recipe(shipped, capsys):
    assert cli.main(["pretrained", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "kind", "trained"]
    row = next(line for line in out if line.startswith("pretrained:tiny-test "))
    assert row.split()[1:3] == ["image", "-"] and "part 1" not in "\n".join(out)
    assert cli.main(["pretrained", "list", "--long"]) == 0
    out = capsys.readouterr().out
    assert "pretrained:tiny-test" in out and "part 1: steps 0-4" in out


def test_a_superseding_export_becomes_the_default_and_the_old_model_stays_loadable(shipped, tmp_path, capsys):
    run, old = shipped
    argv = ["pretrained", "export", str(run), "tiny-test-2", "--command", "pyoco-lab train ... (test)"]
    assert cli.main([*argv, "--supersedes", "no-such-model"]) == 2  # refused before anything is written
    assert "unknown pretrained model" in capsys.readouterr().err
    assert "tiny-test-2" not in pretrained.registry()
    assert cli.main([*argv, "--supersedes", "tiny-test"]) == 0
    assert pretrained.registry()["tiny-test"].superseded_by == "tiny-test-2"
    assert pretrained.default_for(old.train_config) == "pretrained:tiny-test-2"
    assert [m.name for m in pretrained.current_models()] == ["tiny-test-2", "tiny-test"]
    T.load_denoiser("pretrained:tiny-test")  # still loads (and verifies) by name
    capsys.readouterr()
    assert cli.main(["pretrained", "list"]) == 0
    assert "pretrained:tiny-test *" in capsys.readouterr().out
    assert cli.main(["pretrained", "list", "--long"]) == 0
    assert "superseded by pretrained:tiny-test-2" in capsys.readouterr().out


def test_a_video_finetune_ships_into_the_alpha_zoo_and_stands_in_for_its_run(shipped, tmp_path, capsys):
    """The zoo (issue #24): step L of a longer constant-rate finetune ships as an L-step model, matches the
    run that would make it (so notebooks and the explorer load it instead of training), and generates."""
    _, image = shipped
    long = small_config("video", steps=4, checkpoint_every=2)
    run = T.train(long, tmp_path / "long", init="pretrained:tiny-test", progress=False)
    argv = [
        "pretrained",
        "export",
        str(T.checkpoint_dir(run, 2)),
        "zoo-test",
        "--command",
        "pyoco-lab (test)",
    ]
    assert cli.main(argv) == 0
    zoo = pretrained.get("zoo-test")
    short = small_config("video", steps=2, checkpoint_every=2)
    assert zoo.train_config == short and "step 2 of a 4-step run" in zoo.recipe["note"]
    assert zoo.recipe["init"] == f"pretrained:tiny-test@{image.sha256[:16]}"
    with open(run / "log.csv") as handle:  # its training time is the 2 steps', not the whole run's
        rows = list(csv.DictReader(handle))
    assert any(int(row["step"]) > 2 for row in rows)
    kept = [float(row["elapsed_s"]) for row in rows if int(row["step"]) <= 2]
    assert kept and zoo.recipe["wall_seconds"] == round(sum(kept), 1)
    # The prefix claim itself: a 2-step run trained on its own has exactly the zoo model's weights.
    alone = T.train(short, tmp_path / "short", init="pretrained:tiny-test", progress=False)
    ema = load_file(str(T.checkpoint_dir(alone, 2) / T.EMA_FILE))
    assert all(torch.equal(ema[k], v) for k, v in load_file(str(zoo.path)).items())
    # It stands in for exactly that run: same config, same shipped image model.
    assert pretrained.shipped_run(short, "pretrained:tiny-test") == "pretrained:zoo-test"
    assert pretrained.shipped_run(long, "pretrained:tiny-test") is None
    # how a run logs and checkpoints does not change its weights (a scratch model from a run keeping them all)
    kept_all = replace(short, keep_checkpoints=9, checkpoint_every=1, log_every=1)
    assert pretrained.shipped_run(kept_all, "pretrained:tiny-test") == "pretrained:zoo-test"
    assert pretrained.shipped_run(replace(short, lr=short.lr / 2), "pretrained:tiny-test") is None
    assert pretrained.shipped_run(short, None) is None  # from scratch is another run
    spec = study_runs.RunSpec("video-test", short, "pretrained:tiny-test")
    assert study_runs.run_weights(spec, tmp_path / "cache") == "pretrained:zoo-test"
    # A video model is never an image model to finetune from or to invert with.
    assert pretrained.default_for(small_config("video")) == "pretrained:tiny-test"
    assert [m.name for m in pretrained.inversion_models()] == ["tiny-test"]
    capsys.readouterr()
    assert cli.main(["pretrained", "list"]) == 0
    row = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("pretrained:zoo-test")
    )
    assert "video  progressive, α = 2  its training prior" in row and row.endswith("not measured yet")
    assert cli.main(["pretrained", "list", "--long"]) == 0
    out = capsys.readouterr().out
    assert "pretrained:zoo-test: video model, progressive(alpha=2) noise" in out
    assert "finetuned from pretrained:tiny-test@" in out
    generated = tmp_path / "generated"
    assert (
        cli.main(["generate", "pretrained:zoo-test", "--num", "1", "--steps", "2", "--out", str(generated)])
        == 0
    )
    assert any(generated.glob("*.gif"))
    assert cli.main(["generate", "pretrained:tiny-test", "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert "is a shipped image model" in err and "alpha zoo (pretrained:zoo-test)" in err
    panel = Explorer(runs_root=tmp_path / "no-runs").generate
    assert str(panel.run.value) == "pretrained:zoo-test" and panel.run_training_prior() == (
        "progressive",
        2.0,
    )


def test_a_mid_run_checkpoint_of_a_decayed_run_is_not_exported(shipped, tmp_path, capsys):
    config = small_config("video", steps=4, checkpoint_every=2, decay_steps=2)
    run = T.train(config, tmp_path / "decayed", init="pretrained:tiny-test", progress=False)
    argv = ["pretrained", "export", str(T.checkpoint_dir(run, 2)), "zoo-decayed", "--command", "x"]
    assert cli.main(argv) == 2
    assert "learning-rate decay" in capsys.readouterr().err and "zoo-decayed" not in pretrained.registry()
