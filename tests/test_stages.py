"""The cascade's stages trained from the CLI (Fig. 3; A.1 (3), (6)): base, temporal interpolation and
super-resolution runs on the embedded data at toy sizes (real networks, CPU), and the trained
checkpoints sampled end to end as a ``Cascade``.

Sizes: the base and interpolation models make 8 px frames, the SR model 32 px ones from 8 px
(``cascade.SR_FACTOR`` = 4); the interpolation window is 7 frames with 4 known (frame skip 2).
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from pyoco_lab import cli
from pyoco_lab import training as T
from pyoco_lab.data import EmbeddedBuildConfig, build_embedded_dataset
from pyoco_lab.models.cascade import interpolation_condition, sr_condition
from pyoco_lab.noise import NoisePrior
from pyoco_lab.training import batches, networks

torch.set_num_threads(1)

# A reduced build (as tests/test_data.py): every source and motion class, a few clips each, ~10 s.
SMALL = EmbeddedBuildConfig(
    clips_per_motion=1, video_crops=1, video_window_step=32, video_frame_strides=(2,), render_size=64
)
COMMON = [
    "--model",
    "tiny",
    "--batch-size",
    "2",
    "--steps",
    "1",
    "--warmup-steps",
    "1",
    "--num-samples",
    "1",
    "--sample-steps",
    "2",
    "--log-every",
    "1",
    "--no-progress",
]
BASE = ["--phase", "video", "--resolution", "8", "--num-frames", "4", "--joint-images", "0"]
INTERP = ["--phase", "video", "--stage", "interpolation", "--resolution", "8", "--num-frames", "7"]
INTERP += ["--joint-images", "0"]
# The quick video preset appends 1 image per clip: the SR run trains a joint batch, every frame
# conditioned on its own low-resolution copy.
SR = ["--phase", "video", "--stage", "sr", "--model", "tiny-sr", "--resolution", "32", "--num-frames", "4"]


def train(data_root, out, *args) -> int:
    return cli.main(["train", "--data-root", str(data_root), "--out", str(out), *COMMON, *args])


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    build_embedded_dataset(root, resolutions=(8, 32), progress=False, config=SMALL)
    return root


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert train(data_root, root / "base", *BASE, "--from-scratch") == 0
    assert train(data_root, root / "interp", *INTERP, "--init", str(root / "base")) == 0
    assert train(data_root, root / "sr", *SR, "--from-scratch") == 0
    return root


def test_every_stage_trains_from_the_cli(runs):
    for name, stage, cond_channels, sample in (
        ("base", "base", 0, "step-0000001.gif"),
        ("interp", "interpolation", 3, "step-0000001.gif"),
        ("sr", "sr", 3, "step-0000001.gif"),
    ):
        denoiser, config = T.load_denoiser(runs / name)
        assert config.stage == stage and config.steps == 1
        assert denoiser.net.config.cond_channels == cond_channels
        assert (runs / name / "samples" / sample).is_file()  # samples conditioned like training
    assert denoiser.net.config.architecture == "efficient"  # tiny-sr
    meta = json.loads((runs / "interp" / "config.json").read_text())
    assert meta["init"] == str((runs / "base").resolve())


def test_interpolation_starts_from_the_base_video_model(runs):
    """A.1 (6): every base weight copied, the input channels of the known frames zero-initialised."""
    base, _ = T.load_denoiser(runs / "base")
    config = T.load_config(runs / "interp")
    interp = networks.interpolation_from_base(base, config, num_classes=0)
    ours, theirs = interp.state_dict(), base.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        if key == "net.input_conv.weight":
            assert torch.equal(ours[key][:, :3], theirs[key]) and not ours[key][:, 3:].any()
        else:
            assert torch.equal(ours[key], theirs[key]), key
    x = torch.randn(1, 7, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(interp(x, torch.ones(1), cond=torch.randn_like(x)), base(x, torch.ones(1)))


def test_stage_conditions_are_the_cascades(runs):
    clip = torch.randn(2, 7, 3, 32, 32)
    interp = T.load_config(runs / "interp")
    assert torch.equal(batches.stage_condition(interp, clip), interpolation_condition(clip, 2))
    sr = T.load_config(runs / "sr")
    assert torch.equal(batches.stage_condition(sr, clip), sr_condition(clip, 8))
    assert batches.stage_condition(T.load_config(runs / "base"), clip) is None


def test_wrong_stage_inits_and_shapes_fail_before_work(runs, data_root, tmp_path, capsys):
    out = tmp_path / "r"
    for args, message in (
        ([*INTERP, "--init", str(runs / "sr")], "starts from a base video run"),
        ([*INTERP, "--from-scratch", "--num-frames", "8"], "--num-frames 1\\+3k"),
        ([*INTERP, "--from-scratch", "--joint-images", "1"], "--joint-images 0"),
        ([*SR, "--init", str(runs / "base")], "image-phase run"),
        ([*BASE, "--from-scratch", "--model", "tiny-sr"], "--stage interpolation or --stage sr"),
        ([*SR, "--from-scratch", "--resolution", "30"], "divisible by 4"),
    ):
        assert train(data_root, out, *args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert re.search(message, err), (message, err)
    assert not out.exists()


def test_cascade_samples_end_to_end_from_the_trained_runs(runs):
    cascade = T.load_cascade(runs / "base", runs / "interp", runs / "sr")
    assert (cascade.base_frames, cascade.base_size, cascade.frameskip) == (4, 8, 2)
    assert cascade.priors == (NoisePrior("progressive", 2.0),) * 3  # each run's own (quick preset)
    out = cascade(1, generator=torch.Generator().manual_seed(0), num_steps=(2, 2, 2))
    assert out["base"].shape == (1, 4, 3, 8, 8)
    assert out["interpolated"].shape == (1, 7, 3, 8, 8)  # (4 - 1) * 2 + 1 frames
    assert out["sr_low"].shape == (1, 7, 3, 32, 32)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert torch.equal(out["interpolated"][:, ::2], out["base"])  # the known frames are kept
    # The stochastic sampler with churn runs through every stage too (churn noise from each prior).
    options = {"s_churn": 5.0}
    out = cascade(1, num_steps=(2, 2, 2), sampler="stochastic", sampler_options=options)
    assert all(torch.isfinite(v).all() for v in out.values())
    with pytest.raises(ValueError, match="--stage interpolation"):
        T.load_cascade(runs / "base", runs / "base", runs / "sr")


def test_sr_image_pretraining_inflates_into_a_video_sr_model(data_root, tmp_path):
    """eDiff-I initialises the SR models from image models (A.1 (6)): --phase image --stage sr, then
    --phase video --stage sr --init that run."""
    sr_image = ["--phase", "image", "--stage", "sr", "--model", "tiny-sr", "--resolution", "32"]
    assert train(data_root, tmp_path / "image", *sr_image) == 0
    assert train(data_root, tmp_path / "video", *SR, "--init", str(tmp_path / "image")) == 0
    denoiser, config = T.load_denoiser(tmp_path / "video")
    assert config.stage == "sr" and denoiser.net.config.cond_channels == 3
