"""``pyoco-lab generate``: a real (tiny, 2-step) finetune of the shipped 16 px model, sampled to files."""

from __future__ import annotations

import fcntl
import json
import os

import imageio.v3 as iio
import matplotlib.pyplot as plt
import pytest
import torch

from pyoco_lab import noise
from pyoco_lab.analysis import inversion
from pyoco_lab.cli import main
from pyoco_lab.commands import generate
from pyoco_lab.evaluation import keys
from pyoco_lab.training import checkpoints


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("generate") / "run"
    mask = os.umask(0o022)  # the usual mask: what a shared --cache relies on (see the permissions test)
    code = main(
        [
            "train", "--preset", "quick", "--phase", "video", "--resolution", "16", "--num-frames", "4",
            "--steps", "2", "--batch-size", "2", "--init", "pretrained:lab-tiny-16", "--noise", "mixed",
            "--alpha", "1", "--num-samples", "1", "--sample-steps", "2", "--log-every", "1",
            "--out", str(run), "--no-progress",
        ]
    )  # fmt: skip
    os.umask(mask)
    assert code == 0
    return run


def test_generate_writes_videos_and_a_contact_sheet_with_the_runs_prior(video_run, capsys):
    assert main(["generate", str(video_run), "--num", "3", "--sampler", "euler", "--steps", "2"]) == 0
    out = video_run / "generated" / "mixed-a1-euler2-seed0"
    printed = capsys.readouterr().out
    for name in ("samples.mp4", "samples.gif", "contact_sheet.png", "generate.json"):
        assert (out / name).is_file() and str(out / name) in printed
    sheet = iio.imread(out / "contact_sheet.png")
    # a row per video, a column per frame, each frame ~120 px (the old unlabelled sheet was 70x64 px)
    assert sheet.shape[0] >= 3 * 110 and sheet.shape[1] >= 4 * 110, sheet.shape
    gif = iio.imread(out / "samples.gif", index=None)
    assert gif.shape[0] == 4 and gif.shape[2] == 3 * 16 + 2 * 2  # 4 frames, 3 videos side by side
    record = json.loads((out / "generate.json").read_text())
    assert record["prior"] == {"kind": "mixed", "alpha": 1.0} == record["run_prior"] and record["num"] == 3
    # another prior and an explicit folder; a second run replaces its own earlier output whole
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


def test_generate_reinit_names_its_folder_records_the_filter_and_starts_from_the_plain_sample(
    video_run, capsys
):
    argv = ["generate", str(video_run), "--num", "2", "--sampler", "euler", "--steps", "2"]
    assert main([*argv, "--reinit", "2"]) == 0
    out = video_run / "generated" / "mixed-a1-euler2-reinit2-seed0"
    record = json.loads((out / "generate.json").read_text())
    assert record["reinit"] == {"iterations": 2, "spatial_stop": 0.25, "temporal_stop": 0.25, "order": 4}
    assert "reinit2" in capsys.readouterr().out
    assert main(argv) == 0
    plain = json.loads((video_run / "generated" / "mixed-a1-euler2-seed0" / "generate.json").read_text())
    assert plain["reinit"] is None
    frames = lambda folder: iio.imread(video_run / "generated" / folder / "samples.gif", index=None)  # noqa: E731
    assert (frames("mixed-a1-euler2-reinit2-seed0") != frames("mixed-a1-euler2-seed0")).any()
    assert main([*argv, "--reinit", "2", "--reinit-temporal-stop", "0"]) != 0
    assert "temporal stop frequency must be in (0, 1]" in capsys.readouterr().err


def test_generate_never_replaces_what_it_did_not_write(video_run, tmp_path, monkeypatch, capsys):
    before = sorted(str(p.relative_to(video_run)) for p in video_run.rglob("*"))
    assert main(["generate", str(video_run), "--steps", "2", "--out", str(video_run)]) == 2
    assert "is a training run" in capsys.readouterr().err
    assert main(["generate", str(video_run), "--steps", "2", "--out", str(video_run), "--overwrite"]) == 2
    assert "--overwrite never replaces a run" in capsys.readouterr().err
    assert sorted(str(p.relative_to(video_run)) for p in video_run.rglob("*")) == before  # the run is whole
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    some_file = tmp_path / "some_file"
    some_file.write_text("mine too")
    for out, says in ((precious, "notes.txt"), (some_file, "is a file")):
        assert main(["generate", str(video_run), "--steps", "2", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert says in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (precious / "notes.txt").read_text() == "mine" and some_file.read_text() == "mine too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious", "some_file"]  # nothing hidden either
    # a file is never turned into a folder, not even with --overwrite (issue #44)
    assert main(["generate", str(video_run), "--steps", "2", "--out", str(some_file), "--overwrite"]) == 2
    assert "never replaced by a folder" in capsys.readouterr().err and some_file.read_text() == "mine too"


def test_generate_refuses_a_second_writer_of_the_same_out_before_sampling(video_run, tmp_path, capsys):
    out = tmp_path / "out"
    other = tmp_path / ".out.staging-other"  # what a live `generate --out out` holds while it samples
    other.mkdir()
    handle = os.open(other, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert main(["generate", str(video_run), "--steps", "2", "--out", str(out)]) == 2
        assert "another process is writing" in capsys.readouterr().err
        assert not out.exists() and other.is_dir()
    finally:
        os.close(handle)  # that writer dies: its staging folder is stale and is cleared
    assert main(["generate", str(video_run), "--steps", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_generate_refuses_an_unwritable_out_before_sampling(video_run, monkeypatch, capsys, read_only_folder):
    def never(*args, **kwargs):
        raise AssertionError("sampled before checking --out")

    monkeypatch.setattr(generate, "sample_videos", never)
    locked = read_only_folder
    assert main(["generate", str(video_run), "--out", str(locked / "out")]) == 2
    err = capsys.readouterr().err
    assert (
        "cannot write into" in err and "Read-only file system" in err and len(err.strip().splitlines()) == 1
    )


def test_generate_refuses_bad_input_in_one_line_and_writes_nothing(video_run, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["generate", str(video_run), "--noise", "iid", "--alpha", "2", "--out", str(out)]) == 2
    assert "i.i.d. noise has no alpha" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", "pretrained:lab-tiny-16", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is a shipped image model" in err and "--init pretrained:lab-tiny-16" in err
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


def test_run_files_and_caches_follow_the_umask(video_run, tmp_path):
    """Other users of a shared --cache must be able to read checkpoints, eval.json and the inversion
    cache: files follow the umask (0022 -> 0644), not the 0600 of safetensors and mkstemp."""
    files = [f for f in (video_run / "checkpoints").rglob("*") if f.is_file()]
    assert files and {oct(f.stat().st_mode & 0o777) for f in files} == {oct(0o644)}
    mask = os.umask(0o022)
    try:
        keys.store_entry(tmp_path / "eval.json", "key", {"fvd": 1.0})
        inversion._save_atomic({"maps": torch.zeros(2)}, tmp_path / "inversion" / "maps.safetensors")
    finally:
        os.umask(mask)
    for f in (tmp_path / "eval.json", tmp_path / "inversion" / "maps.safetensors"):
        assert oct(f.stat().st_mode & 0o777) == oct(0o644), f


def test_config_json_is_valid_json_and_old_files_with_infinity_still_load(video_run, tmp_path):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    text = (video_run / "config.json").read_text()
    stored = json.loads(text, parse_constant=refuse)["config"]  # strict: no Infinity / NaN
    assert stored["sample_churn_tmax"] == "inf"
    config = checkpoints.load_config(video_run)
    assert config.sample_churn_tmax == float("inf") and config.alpha == 1.0
    old = tmp_path / "old-run"  # written before: Python's Infinity
    old.mkdir()
    (old / "config.json").write_text(text.replace('"inf"', "Infinity"))
    assert checkpoints.load_config(old) == config


def test_the_contact_sheet_labels_each_row_with_its_prior_and_seed_and_each_column_with_its_frame():
    videos = torch.rand(3, 5, 3, 16, 16) * 2 - 1
    fig = generate.contact_sheet_figure(
        videos, noise.NoisePrior("progressive", 2.0), seed=7, how="heun, 18 steps"
    )
    try:
        axes = [ax for ax in fig.axes if ax.images]
        assert len(axes) == 3 * 5  # one image per frame of each video
        rows = [ax.get_ylabel() for ax in axes if ax.get_ylabel()]
        assert rows == [f"video {i}\nprogressive\nα = 2\nseed 7" for i in range(3)]
        assert [ax.get_title() for ax in axes[:5]] == [f"frame {f}" for f in range(5)]
        assert "progressive noise α = 2, seed 7 (heun, 18 steps)" in fig.get_suptitle()
        width, height = fig.get_size_inches() * 110  # save_figure's dpi
        assert width / 5 >= 100 and height / 3 >= 100  # each frame large enough to see
    finally:
        plt.close(fig)
    inf = generate.contact_sheet_figure(videos[:1], noise.NoisePrior("mixed", float("inf")), seed=0)
    assert "α = ∞" in inf.axes[0].get_ylabel()
    plt.close(inf)
