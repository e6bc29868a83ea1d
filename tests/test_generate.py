"""``pyoco-lab generate``: a real (tiny, 2-step) finetune of the shipped 16 px model, sampled to files."""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest

from pyoco_lab.cli import main


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("generate") / "run"
    code = main(
        [
            "train", "--preset", "quick", "--phase", "video", "--resolution", "16", "--num-frames", "4",
            "--steps", "2", "--batch-size", "2", "--init", "pretrained:lab-tiny-16", "--noise", "mixed",
            "--alpha", "1", "--num-samples", "1", "--sample-steps", "2", "--log-every", "1",
            "--out", str(run), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    return run


def test_generate_writes_videos_and_a_contact_sheet_with_the_runs_prior(video_run, capsys):
    assert main(["generate", str(video_run), "--num", "3", "--sampler", "euler", "--steps", "2"]) == 0
    out = video_run / "generated" / "mixed-a1-euler2-seed0"
    printed = capsys.readouterr().out
    for name in ("samples.mp4", "samples.gif", "contact_sheet.png", "generate.json"):
        assert (out / name).is_file() and str(out / name) in printed
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (3 * 16 + 2 * 2, 4 * 16 + 3 * 2, 3)  # a row per video, a column per frame
    gif = iio.imread(out / "samples.gif", index=None)
    assert gif.shape[0] == 4 and gif.shape[2] == 3 * 16 + 2 * 2  # 4 frames, 3 videos side by side
    record = json.loads((out / "generate.json").read_text())
    assert record["prior"] == {"kind": "mixed", "alpha": "1"} and record["num"] == 3
    # another prior and an explicit folder; a second run replaces the folder whole
    target = video_run / "mine"
    for _ in range(2):
        assert main(["generate", str(video_run), "--num", "2", "--steps", "2", "--noise", "progressive",
                     "--alpha", "inf", "--out", str(target)]) == 0  # fmt: skip
    assert json.loads((target / "generate.json").read_text())["prior"] == {
        "kind": "progressive",
        "alpha": "inf",
    }
    hidden = [p.name for p in video_run.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert hidden == []  # no staging folder left behind (.lock is the run's writer lock)


def test_generate_refuses_bad_input_in_one_line_and_writes_nothing(video_run, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["generate", str(video_run), "--noise", "iid", "--alpha", "2", "--out", str(out)]) == 2
    assert "i.i.d. noise has no alpha" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_training_writes_its_samples_and_their_frame_correlation_to_tensorboard(video_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(video_run / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert "samples/video" in events.Tags()["images"]
    image = events.Images("samples/video")[-1]
    assert image.step == 2 and image.encoded_image_string[:6] in (b"GIF89a", b"GIF87a")  # an animated GIF
    scalars = events.Tags()["scalars"]
    assert {"samples/frame_correlation_lag1", "samples/prior_correlation_lag1", "train/loss"} <= set(scalars)
    measured = events.Scalars("samples/frame_correlation_lag1")[-1].value
    assert -1.0 <= measured <= 1.0
    # mixed alpha = 1: consecutive frames of the prior correlate by alpha^2 / (1 + alpha^2) = 0.5 (eq. 3)
    assert events.Scalars("samples/prior_correlation_lag1")[-1].value == pytest.approx(0.5)
