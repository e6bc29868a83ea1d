"""The images-seen curve (issue #23): ``pyoco-lab pretrained curve`` measures every kept checkpoint of image
runs with the frame yardsticks and the inversion's Gaussianity, and grows across the parts of a run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from tiny_training import small_config

from pyoco_lab import cli
from pyoco_lab import training as T
from pyoco_lab.data import build_embedded_dataset

CURVE_ARGS = [
    "--num-samples", "32", "--sampler", "euler", "--steps", "2", "--inversion-steps", "2", "--no-progress",
]  # fmt: skip


def test_the_curve_refuses_a_folder_it_did_not_write_before_any_work(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("a user's notes")
    assert (
        cli.main(["pretrained", "curve", str(tmp_path / "no-run"), "--out", str(foreign), *CURVE_ARGS]) == 2
    )
    assert "did not write (notes.txt)" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "a user's notes"


def test_the_curve_refuses_a_video_run(tmp_path, capsys):
    image = T.train(small_config("image", steps=2), tmp_path / "image", progress=False)
    video = T.train(small_config("video", steps=2), tmp_path / "video", init=image, progress=False)
    assert (
        cli.main(["pretrained", "curve", str(image), str(video), "--out", str(tmp_path / "c"), *CURVE_ARGS])
        == 2
    )
    assert "is a video run; the curve measures image runs" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_the_curve_measures_every_checkpoint_and_keeps_the_points_of_pruned_ones(tmp_path):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    build_embedded_dataset(resolutions=(16,), progress=False)  # no-op when already built
    config = small_config("image", resolution=16, steps=4, checkpoint_every=2, keep_checkpoints=10)
    run = T.train(config, tmp_path / "run", progress=False)
    out, cache = tmp_path / "curve", tmp_path / "cache"
    args = ["pretrained", "curve", str(run), "--out", str(out), "--cache-dir", str(cache), *CURVE_ARGS]
    assert cli.main([*args, "--raw-weights"]) == 0
    curve = json.loads((out / "curve.json").read_text())
    points = curve["runs"]["run"]["points"]
    assert [(p["step"], p["weights"]) for p in points] == [(2, "ema"), (4, "ema"), (2, "raw"), (4, "raw")]
    assert [p["images_seen"] for p in points[:2]] == [2 * 4, 4 * 4]  # steps x batch size
    for p in points:
        low, high = p["KID-app-ci"]
        assert low <= p["KID-app"] <= high and 0 <= p["C2ST-frame"] <= 1
        assert ("variance" in p) == (p["weights"] == "ema")  # the shipped (EMA) weights are inverted
    assert points[0]["KID-app"] != points[2]["KID-app"]  # raw and EMA weights are different models
    assert curve["measured_by"]["command"].startswith("pyoco-lab pretrained curve")
    assert (out / "curve.png").stat().st_size and (out / "samples-run.png").stat().st_size

    # The next part: step 2's checkpoint is gone (pruned, or lost with a machine); its point stays.
    shutil.rmtree(T.checkpoint_dir(run, 2))
    assert cli.main(args) == 0
    again = json.loads((out / "curve.json").read_text())["runs"]["run"]["points"]
    assert [(p["step"], p["weights"]) for p in again] == [(2, "ema"), (4, "ema"), (2, "raw"), (4, "raw")]
    assert again[1] == points[1]  # read from the cache: the same numbers
