"""Tests of the training loop: presets, validation, data order, checkpoints, resume after a real
SIGKILL (bitwise), NaN handling, caching, and 2-process DDP under torchrun (gloo, CPU).

The network and data here are small real implementations with the contracts of
``pyoco_lab.models`` / ``pyoco_lab.data`` (a conv net taking ``(x, c_noise, class_labels=...,
num_video_frames=...)`` and datasets of dict items), so the loop is tested in seconds on CPU.
The pieces live in ``tests/tiny_training.py``; subprocesses run that file as a script.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tiny_training
import torch
from safetensors.torch import load_file
from tiny_training import (
    CLI_ARGS,
    NUM_FRAMES,
    RESOLUTION,
    final_weights,
    install_test_pieces,
    run_cli,
    small_config,
)

from pyoco_lab import cli, devices, edm
from pyoco_lab import training as T
from pyoco_lab.analysis import presets, study_runs
from pyoco_lab.training import networks, precision


@pytest.fixture(autouse=True)
def _pieces(monkeypatch):
    install_test_pieces(monkeypatch)


# ----------------------------------------------------------------------------------------------
# Configuration and validation.


def test_presets_follow_the_paper():
    image, video = T.preset_config("ucf-small", "image"), T.preset_config("ucf-small", "video")
    assert (image.optimizer, image.lr, image.warmup_steps) == ("adam", 2e-4, 5000)  # A.3
    assert (video.optimizer, video.lr, video.warmup_steps) == ("adam", 1e-4, 5000)
    assert image.model == "ucf-small" and image.resolution == 64 and video.num_frames == 16
    large = T.preset_config("ucf-large", "video", optimizer_preset="large-scale")
    assert (large.optimizer, large.lr, large.weight_decay, large.beta1, large.beta2, large.ema_decay) == (
        "adamw",
        1e-4,
        0.01,
        0.9,
        0.999,
        0.9999,
    )  # Table F
    assert large.grad_checkpointing
    assert T.preset_config("quick", "video", alpha=float("inf")).alpha == float("inf")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: T.preset_config("nope", "image"), "unknown preset"),
        (lambda: T.preset_config("quick", "video", alpha=-1.0), "alpha must be >= 0"),
        (lambda: T.preset_config("quick", "video", noise="pink"), "noise='pink' is not valid"),
        (lambda: T.preset_config("quick", "image", noise="mixed"), "image phase"),
        (lambda: T.preset_config("quick", "image", steps=0), "steps must be >= 1"),
        (
            lambda: T.preset_config("quick", "video", noise="iid", alpha=2.0),
            "alpha has no effect with --noise iid; drop --alpha or choose --noise mixed/progressive",
        ),
        (
            lambda: T.preset_config("quick", "video", noise="iid", alpha=float("inf")),
            "no effect with --noise iid",
        ),
        (lambda: T.preset_config("quick", "image", alpha=2.0), "image phase.*drop --noise/--alpha"),
        (lambda: T.validate_config(T.TrainConfig(phase="image", alpha=0.5)), "image phase"),
        (lambda: T.preset_config("quick", "image", grad_accumulation=0), "grad_accumulation must be >= 1"),
        (lambda: T.preset_config("quick", "image", steps=5, decay_steps=9), "pass --decay-steps <= --steps"),
    ],
)
def test_bad_configs_fail_with_a_fix(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_field_is_a_cli_option(capsys):
    names = [f.name for f in T.config_fields() if f.name != "phase"]
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = capsys.readouterr().out
    for name in names:
        assert "--" + name.replace("_", "-") in help_text
    code = cli.main(
        [
            "train",
            "--out",
            "x",
            "--phase",
            "video",
            "--alpha",
            "inf",
            "--lr",
            "3e-4",
            "--no-deterministic",
            "--print-config",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["lr"] == 3e-4 and printed["alpha"] == float("inf")
    assert printed["deterministic"] is False and printed["noise"] == "progressive"


def test_cli_reports_bad_input_in_one_line(capsys, tmp_path):
    assert cli.main(["train", "--out", str(tmp_path), "--phase", "video", "--alpha", "-2"]) == 2
    assert "alpha must be >= 0" in capsys.readouterr().err
    assert (
        cli.main(
            ["train", "--out", str(tmp_path / "r"), "--phase", "video", "--init", str(tmp_path / "missing")]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # failed before any work
    # quick's batch of 8 does not split into 3 micro-batches
    assert cli.main(["train", "--out", str(tmp_path / "g"), "--grad-accumulation", "3"]) == 2
    error = capsys.readouterr().err
    assert "batch_size 8 must be divisible" in error and "multiple of 3" in error and error.count("\n") == 1
    assert not (tmp_path / "g").exists()


def test_cli_default_run_folders_and_init_auto(tmp_path, monkeypatch):
    monkeypatch.setenv("PYOCO_RUNS", str(tmp_path))
    assert cli.main(["train", "--phase", "image", *CLI_ARGS, "--steps", "2"]) == 0
    assert cli.main(["train", "--phase", "video", *CLI_ARGS, "--steps", "2", "--init", "auto"]) == 0
    scratch = ["train", "--phase", "video", *CLI_ARGS, "--steps", "2", "--noise", "iid"]
    assert cli.main([*scratch, "--from-scratch"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "quick-image",
        "quick-video-iid-scratch",
        "quick-video-progressive-a2",
    ]
    meta = json.loads((tmp_path / "quick-video-progressive-a2" / "config.json").read_text())
    assert meta["init"] == str((tmp_path / "quick-image").resolve())
    assert json.loads((tmp_path / "quick-video-iid-scratch" / "config.json").read_text())["init"] is None


def test_cli_video_phase_needs_init_or_from_scratch(tmp_path, capsys):
    """--phase video without --init no longer trains from scratch silently: it says so and stops."""
    video = ["train", "--phase", "video", *CLI_ARGS, "--steps", "2", "--out", str(tmp_path / "r")]
    assert cli.main(video) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--init" in err and "--from-scratch" in err
    assert cli.main([*video, "--from-scratch", "--init", str(tmp_path)]) == 2
    assert "contradict" in capsys.readouterr().err
    image = ["train", "--phase", "image", *CLI_ARGS, "--steps", "2", "--out", str(tmp_path / "r")]
    assert cli.main([*image, "--from-scratch"]) == 2
    assert "--phase video" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before any work
    assert cli.main(["train", "--phase", "video", "--print-config"]) == 0  # printing needs neither


def test_data_order_is_a_function_of_position():
    whole = T.data_indices(10, seed=3, stream=0, start=4, count=23)
    parts = T.data_indices(10, 3, 0, 4, 9) + T.data_indices(10, 3, 0, 13, 14)
    assert whole == parts
    epoch = T.data_indices(10, 3, 0, 10, 10)
    assert sorted(epoch) == list(range(10))  # each epoch is a permutation
    assert epoch != T.data_indices(10, 3, 0, 20, 10)  # and epochs differ
    assert T.data_indices(10, 4, 0, 10, 10) != epoch  # so do seeds


# ----------------------------------------------------------------------------------------------
# Runs in-process.


def test_image_then_video_run_leaves_checkpoints_logs_and_samples(tmp_path):
    image_run = T.train(small_config("image"), tmp_path / "image", progress=False)
    video_run = T.train(
        small_config("video", class_conditional=True), tmp_path / "video", init=image_run, progress=False
    )
    for run, sample in ((image_run, "step-0000006.png"), (video_run, "step-0000006.gif")):
        assert (run / "samples" / sample).is_file()
        rows = (run / "log.csv").read_text().strip().splitlines()
        assert len(rows) == 1 + 6 and rows[0].startswith("step,loss")
        assert list((run / "tb").iterdir())
        kept = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
        assert kept == ["step-0000004", "step-0000006"]  # keep_checkpoints=2
    state = torch.load(T.latest_checkpoint(video_run) / T.STATE_FILE, weights_only=True)
    assert state["step"] == 6 and "optimizer" in state and "rng" in state
    denoiser, config = T.load_denoiser(video_run)
    assert config.phase == "video" and config.noise == "progressive" and not denoiser.training
    x = torch.randn(2, NUM_FRAMES, 3, RESOLUTION, RESOLUTION)
    assert denoiser(x, torch.ones(2), class_labels=torch.zeros(2, dtype=torch.long)).shape == x.shape
    # The inflated video model started from the image model's weights.
    image_weights = load_file(str(T.checkpoint_dir(image_run, 6) / T.EMA_FILE))
    video_start = networks.inflate_denoiser(T.load_denoiser(image_run)[0], config, 3).state_dict()
    assert torch.equal(video_start["net.conv.weight"], image_weights["net.conv.weight"])


def test_finished_run_is_cached_and_conflicts_are_refused(tmp_path):
    config = small_config("image", steps=2)
    run = T.train(config, tmp_path, progress=False)
    stamp = (T.latest_checkpoint(run) / T.MODEL_FILE).stat().st_mtime_ns
    assert T.train(config, tmp_path, progress=False) == run
    assert (T.latest_checkpoint(run) / T.MODEL_FILE).stat().st_mtime_ns == stamp  # no retraining
    with pytest.raises(ValueError, match="different config.*lr"):
        T.train(replace_config(config, lr=1e-2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="--resume"):
        T.train(replace_config(config, steps=4), tmp_path, progress=False)  # extending needs --resume
    # Accumulation changes the gradient's rounding: a run is resumed only with the micro-batches it had.
    with pytest.raises(ValueError, match="different config.*grad_accumulation: 1 -> 2"):
        T.train(replace_config(config, steps=4, grad_accumulation=2), tmp_path, resume=True, progress=False)
    T.train(replace_config(config, steps=4), tmp_path, resume=True, progress=False)
    assert T.latest_checkpoint(run).name == "step-0000004"


def test_learning_rate_warms_up_holds_then_decays_to_zero():
    config = small_config("image", steps=10, lr=1.0, warmup_steps=2, decay_steps=4)
    rates = [T.learning_rate(config, step) for step in range(10)]
    assert rates == pytest.approx([0.5, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25])
    assert [T.learning_rate(replace_config(config, decay_steps=0), s) for s in (5, 9)] == [1.0, 1.0]


def test_a_decay_added_on_resume_matches_a_run_that_had_it_from_the_start(tmp_path):
    """Warm-up-stable-decay in parts: a constant-rate run resumed with --steps/--decay-steps, while its
    checkpoint precedes the decay, is the run with that schedule from step 0 (bitwise on CPU)."""
    constant = small_config("image", steps=4, checkpoint_every=2)
    decayed = replace_config(constant, steps=8, decay_steps=4)
    in_parts = T.train(constant, tmp_path / "parts", progress=False)
    T.train(decayed, in_parts, resume=True, progress=False)
    whole = T.train(decayed, tmp_path / "whole", progress=False)
    for name in (T.MODEL_FILE, T.EMA_FILE):
        a = load_file(str(T.checkpoint_dir(in_parts, 8) / name))
        b = load_file(str(T.checkpoint_dir(whole, 8) / name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    # Past the decay's start, the steps already taken had another rate: refused, nothing changed.
    with pytest.raises(ValueError, match="past the start of the learning-rate decay"):
        T.train(replace_config(decayed, steps=12), in_parts, resume=True, progress=False)
    assert T.latest_checkpoint(in_parts).name == "step-0000008"


def replace_config(config, **changes):
    from dataclasses import replace

    return T.validate_config(replace(config, **changes))


def test_init_that_does_not_fit_fails_before_work(tmp_path):
    image_run = T.train(small_config("image", steps=2), tmp_path / "image", progress=False)
    video_run = T.train(small_config("video", steps=2), tmp_path / "video", progress=False)
    with pytest.raises(ValueError, match="image-phase run"):
        T.train(small_config("video", steps=2), tmp_path / "v2", init=video_run, progress=False)
    with pytest.raises(ValueError, match="does not fit"):
        T.train(
            small_config("video", steps=2, model="tiny-wide"), tmp_path / "v3", init=image_run, progress=False
        )
    with pytest.raises(ValueError, match="image-phase run"):  # an image run continues an image model only
        T.train(small_config("image", steps=2), tmp_path / "v4", init=video_run, progress=False)
    with pytest.raises(ValueError, match="does not fit"):
        T.train(
            small_config("image", steps=2, model="tiny-wide"), tmp_path / "v5", init=image_run, progress=False
        )
    assert not any((tmp_path / name).exists() for name in ("v2", "v3", "v4", "v5"))


def test_an_image_run_continues_from_an_image_models_weights_and_keeps_its_history(tmp_path):
    """The path of a long pre-training whose run folder was lost with its machine (issue #23): the next
    part starts from the shipped (EMA) weights; every part is recorded in RUN/history.jsonl."""
    first = T.train(small_config("image", steps=2), tmp_path / "first", progress=False, command="part 1")
    config = small_config("image", steps=2, lr=1e-30, warmup_steps=0)  # the weights stay where they start
    second = T.train(config, tmp_path / "second", init=first, progress=False)
    start = load_file(str(T.checkpoint_dir(first, 2) / T.EMA_FILE))
    for name, value in load_file(str(T.checkpoint_dir(second, 2) / T.MODEL_FILE)).items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=1e-20, msg=name)
    (part,) = T.checkpoints.read_history(first)
    assert (part["command"], part["from_step"], part["to_step"]) == ("part 1", 0, 2)
    assert part["wall_seconds"] >= 0 and part["commit"] and "CPU cores" in part["machine"]
    resumed = T.train(small_config("image", steps=4), first, resume=True, progress=False, command="part 2")
    assert [(p["command"], p["from_step"], p["to_step"]) for p in T.checkpoints.read_history(resumed)] == [
        ("part 1", 0, 2),
        ("part 2", 2, 4),
    ]


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    # A huge learning rate drives the weights to inf within a few steps.
    config = small_config("image", steps=50, lr=1e30, warmup_steps=0, grad_clip=0.0, checkpoint_every=1)
    with pytest.raises(T.TrainingDiverged, match="loss became .* at step .*--resume"):
        T.train(config, tmp_path, progress=False)
    last = T.latest_checkpoint(tmp_path)
    assert last is not None
    state = torch.load(last / T.STATE_FILE, weights_only=True)
    assert 1 <= state["step"] < 50
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    assert T.load_denoiser(tmp_path)[1].steps == 50  # the kept checkpoint still loads


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    config = small_config("image", steps=4)
    T.train(config, tmp_path, progress=False)
    before = T.latest_checkpoint(tmp_path)

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crash)  # dies after the weights, before the state file
    model = T.load_denoiser(tmp_path, ema=False)[0]
    optimizer = T.build_optimizer(config, model)
    with pytest.raises(OSError):
        T.save_checkpoint(tmp_path, 5, model=model, ema=model, optimizer=optimizer, complete=False)
    assert T.latest_checkpoint(tmp_path) == before
    assert not (tmp_path / "checkpoints" / "step-0000005").exists()


# ----------------------------------------------------------------------------------------------
# Precision (issue #23): bf16 autocasts the network on the CPU too; auto is resolved once per run.

CPU = torch.device("cpu")


def test_bf16_runs_the_network_in_bf16_and_the_loss_and_weights_in_fp32():
    torch.manual_seed(0)
    denoiser = networks.build_network(small_config("video"))
    seen = {}
    denoiser.net.conv.register_forward_hook(lambda module, args, out: seen.update(conv=out.dtype))
    x = torch.rand(2, NUM_FRAMES, 3, RESOLUTION, RESOLUTION) * 2 - 1
    sigma = torch.tensor([0.5, 2.0])
    forward = precision.network_call(denoiser, "bf16", CPU)
    assert forward(x, sigma).dtype == torch.float32 and seen["conv"] == torch.bfloat16
    loss = edm.edm_loss(forward, x, torch.randn_like(x), sigma, denoiser.sigma_data)
    assert loss.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")  # the loss outside
    loss.mean().backward()
    assert all(p.dtype == p.grad.dtype == torch.float32 for p in denoiser.parameters())  # fp32 masters
    precision.network_call(denoiser, "fp32", CPU)(x, sigma)
    assert seen["conv"] == torch.float32
    with pytest.raises(ValueError, match="not resolved"):
        precision.autocast("auto", CPU)


def test_bf16_on_cpu_changes_the_arithmetic_and_keeps_ema_and_adam_state_fp32(tmp_path):
    runs = {
        p: T.train(small_config("image", steps=3, precision=p), tmp_path / p, progress=False)
        for p in (
            "fp32",
            "bf16",
        )
    }
    fp32, bf16 = final_weights(runs["fp32"]), final_weights(runs["bf16"])
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32), "bf16 was a no-op on the CPU"
    last = T.latest_checkpoint(runs["bf16"])
    ema = load_file(str(last / T.EMA_FILE))
    adam = torch.load(last / T.STATE_FILE, weights_only=True)["optimizer"]["state"]
    moments = [v for state in adam.values() for k, v in state.items() if k != "step"]
    assert moments and all(t.dtype == torch.float32 for t in [*bf16.values(), *ema.values(), *moments])


@pytest.mark.parametrize(
    "flag, seconds, picked",
    [
        (None, None, "fp32"),  # no native bf16: not even measured
        ("amx_bf16", {"fp32": 1.0, "bf16": 0.7}, "bf16"),  # measured faster
        ("amx_bf16", {"fp32": 1.0, "bf16": 0.99}, "fp32"),  # not faster by AUTO_MIN_SPEEDUP
    ],
)
def test_auto_precision_is_resolved_once_recorded_and_kept_on_resume(
    tmp_path, monkeypatch, capsys, flag, seconds, picked
):
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: flag)
    measured = []
    monkeypatch.setattr(
        precision, "measure_step_seconds", lambda m, c, d, rows: measured.append(rows) or seconds
    )
    run = T.train(small_config("image", steps=2, precision="auto"), tmp_path, progress=False)
    assert T.load_config(run).precision == picked  # config.json records what ran
    err = capsys.readouterr().err
    assert f"--precision auto -> {picked}" in err and (flag is None or "0.700 s" in err or "0.990 s" in err)
    assert measured == ([] if flag is None else [4])  # one micro-batch of the run: 4 rows
    # Extending the run: auto takes the recorded precision, whatever the machine would pick now.
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: None if flag else "amx_bf16")
    monkeypatch.setattr(precision, "measure_step_seconds", lambda *a: pytest.fail("measured on resume"))
    T.train(small_config("image", steps=4, precision="auto"), run, resume=True, progress=False)
    assert T.load_config(run).precision == picked and T.latest_checkpoint(run).name == "step-0000004"


def test_bf16_on_a_cpu_without_native_bf16_warns_before_the_first_step(tmp_path, monkeypatch, capsys):
    assert not precision.emulated_bf16("fp32", CPU, cpu_flag=None)
    assert not precision.emulated_bf16("bf16", CPU, cpu_flag="amx_bf16")
    assert not precision.emulated_bf16("bf16", torch.device("cuda", 0), cpu_flag=None)
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: None)
    assert precision.emulated_bf16("bf16", CPU)
    run = T.train(small_config("image", steps=1, precision="bf16"), tmp_path / "run", progress=False)
    assert T.load_config(run).precision == "bf16"  # asked for explicitly: warned, not overruled
    err = capsys.readouterr().err
    assert "bf16 is emulated" in err and "pass --precision fp32" in err
    T.train(small_config("image", steps=1, precision="fp32"), tmp_path / "fp32", progress=False)
    assert "emulated" not in capsys.readouterr().err


def test_auto_measurement_leaves_the_model_and_random_streams_alone():
    torch.manual_seed(0)
    model = networks.build_network(small_config("video"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    seconds = precision.measure_step_seconds(model, small_config("video"), CPU, rows=2, steps=1)
    assert set(seconds) == {"fp32", "bf16"} and all(s > 0 for s in seconds.values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize(
    "cpuinfo, flag",
    [
        ("flags\t\t: fpu avx2 fma avx512f avx512_bf16 amx_tile amx_bf16\n", "amx_bf16"),
        ("flags\t\t: fpu avx2 fma avx512f avx512_bf16\n", "avx512_bf16"),
        ("flags\t\t: fpu avx2 fma f16c\n", None),  # most of the lab's machines: AVX2 only
        ("Features\t: fp asimd bf16 i8mm\n", "bf16"),  # aarch64 (Armv8.6 BF16)
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, cpuinfo, flag):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\n" + cpuinfo)
    assert devices.cpu_native_bf16(str(tmp_path / "cpuinfo")) == flag
    assert devices.cpu_native_bf16(str(tmp_path / "missing")) is None


# ----------------------------------------------------------------------------------------------
# Fault tolerance and distribution, in real subprocesses.


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: autocast on the CPU (issue #23)
def test_resume_after_sigkill_is_bitwise_identical(tmp_path, precision):
    args = [
        "train",
        "--phase",
        "video",
        *CLI_ARGS,
        "--precision",
        precision,
        "--steps",
        "40",
        "--checkpoint-every",
        "5",
        "--joint-images",
        "1",
        "--noise",
        "mixed",
        "--alpha",
        "1",
        "--from-scratch",
    ]
    reference = run_cli(*args, "--out", str(tmp_path / "reference"))
    victim = run_cli(
        *args, "--out", str(tmp_path / "victim"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        latest = T.latest_checkpoint(tmp_path / "victim")
        if latest is not None and int(latest.name.split("-")[1]) >= 10:
            break
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)  # a real kill, mid-run
    victim.wait()
    killed_at = int(T.latest_checkpoint(tmp_path / "victim").name.split("-")[1])
    assert 10 <= killed_at < 40, "the run finished before it could be killed"
    resumed = run_cli(*args, "--out", str(tmp_path / "victim"), "--resume")
    assert resumed.wait(timeout=300) == 0 and reference.wait(timeout=300) == 0
    a, b = final_weights(tmp_path / "reference"), final_weights(tmp_path / "victim")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ema_a = load_file(str(T.latest_checkpoint(tmp_path / "reference") / T.EMA_FILE))
    ema_b = load_file(str(T.latest_checkpoint(tmp_path / "victim") / T.EMA_FILE))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_two_process_ddp_matches_one_process(tmp_path):
    lr, steps = 1e-3, 4
    args = [
        "train",
        "--phase",
        "video",
        *CLI_ARGS,
        "--steps",
        str(steps),
        "--checkpoint-every",
        "2",
        "--lr",
        str(lr),
        "--warmup-steps",
        "0",
        "--joint-images",
        "1",
        "--class-conditional",  # label dropout drawn for the global batch: each shard must get its rows
        "--label-dropout",
        "0.5",
        "--from-scratch",
    ]
    single = run_cli(*args, "--out", str(tmp_path / "single"))
    accumulated = run_cli(*args, "--grad-accumulation", "2", "--out", str(tmp_path / "accumulated"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            tiny_training.__file__,
            *args,
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert single.wait(timeout=300) == 0 and accumulated.wait(timeout=300) == 0
    sync = json.loads((tmp_path / "ddp" / "sync.json").read_text())
    assert sync["step"] == steps and len(set(sync["checksums"])) == 1  # ranks in sync
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2

    def logged(run, column):
        rows = (run / "log.csv").read_text().strip().splitlines()[1:]
        return torch.tensor([float(r.split(",")[column]) for r in rows], dtype=torch.float64)

    # Bitwise: one process accumulating 2 micro-batches of 2 clips and 2 processes of 2 clips each.
    # Every micro-batch gets its rank's rows, noise, sigma and label dropout; its gradient is that of
    # the loss scaled by 1/2 (exact: a power of two), and DDP halves each rank's gradient and
    # all-reduces a two-term sum: g1/2 + g2/2 either way, and a + b == b + a. The logged loss is
    # likewise l1/2 + l2/2 vs the all-reduced mean (l1 + l2)/2, equal in binary floating point.
    # Compared: every weight and EMA tensor (torch.equal), the logged losses and gradient norms (==).
    for name in (T.MODEL_FILE, T.EMA_FILE):
        a = load_file(str(T.latest_checkpoint(tmp_path / "ddp") / name))
        b = load_file(str(T.latest_checkpoint(tmp_path / "accumulated") / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    for column in (1, 3):  # loss, grad_norm (exact: read back from the same decimal text)
        assert torch.equal(logged(tmp_path / "ddp", column), logged(tmp_path / "accumulated", column))

    # One process without accumulation is not bitwise: every row's data, noise and sigma are the same,
    # only the batch reduction differs -- it sums the gradient over all 4 clips, two processes sum 2
    # each and all-reduce. The step-1 gradient norm of each run is bitwise that of its reduction,
    # computed here in-process:
    config = T.load_config(tmp_path / "single")
    whole, halves = (
        _first_step_grad_norms(config, [slice(0, 4)]),
        _first_step_grad_norms(config, [slice(0, 2), slice(2, 4)]),
    )
    assert logged(tmp_path / "single", 3)[0] == whole and logged(tmp_path / "ddp", 3)[0] == halves
    # From there the runs stay a rounding apart (measured: gradient norms 1 ulp apart, weights <= 4.1e-7).
    assert torch.allclose(logged(tmp_path / "ddp", 1), logged(tmp_path / "single", 1), rtol=1e-6, atol=0)
    assert torch.allclose(logged(tmp_path / "ddp", 3), logged(tmp_path / "single", 3), rtol=1e-6, atol=0)
    a, b = final_weights(tmp_path / "ddp"), final_weights(tmp_path / "single")
    torch.manual_seed(config.seed)  # the runs' initial weights
    start = networks.build_network(config, num_classes=3).state_dict()
    for k in a:
        # Adam's first step is lr * g/|g| per element, so a rounding-level difference in a
        # gradient near 0 can move an element by up to 2 lr per step: bounded, never more.
        diff = (a[k] - b[k]).abs()
        assert diff.max() <= 2 * lr * steps
        moved = (b[k] - start[k]).abs()
        # and almost every element agrees to far better than its own movement.
        assert (diff <= 1e-5 * lr + 1e-3 * moved).float().mean() >= 0.99


def _first_step_grad_norms(config, micro_batches) -> float:
    """Step 1's gradient norm, the global batch's gradient summed over ``micro_batches`` of rows
    (each loss scaled by its share, as DDP averages), in float32 as the run logs it."""
    from pyoco_lab import edm
    from pyoco_lab.training import batches, distributed, loop

    dataset, images = batches.build_datasets(config)
    data = batches.step_batches(config, dataset, images, distributed.DistEnv(), 0)
    x, labels, appended, image_labels = next(iter(data))
    x = batches.training_batch(config, x, appended, "cpu")
    eps, sigma = loop.prior_noise(config, 0, x.shape), loop.training_sigma(config, 0)
    torch.manual_seed(config.seed)
    model = networks.build_network(config, num_classes=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runs (OMP_NUM_THREADS=1): a reduction's order follows its threads
    try:
        for rows in micro_batches:
            part, cond = loop.micro_batch_inputs(config, 0, rows, rows, x, labels, image_labels, True, None)
            loss = edm.edm_loss(model, part, eps[rows], sigma[rows], model.sigma_data, **cond).mean()
            (loss / len(micro_batches)).backward()
    finally:
        torch.set_num_threads(threads)
    return float(loop.clip_gradients(model, 0.0))


# ----------------------------------------------------------------------------------------------
# Joint batches: every appended image is trained under its own class label (A.1 (7)).


def test_appended_images_keep_their_own_labels_and_drop_them_on_their_own():
    from pyoco_lab.training import batches

    config = small_config("video", class_conditional=True, label_dropout=0.3, batch_size=8, joint_images=2)
    labels, image_labels = torch.arange(8) % 3, (torch.arange(16) + 1) % 3
    everything = slice(0, 8)
    plain = batches.dropped_labels(config, 5, labels, everything)
    joint = batches.dropped_labels(config, 5, labels, everything, image_labels)
    assert joint.shape == (8, NUM_FRAMES + 2)
    assert torch.equal(joint[:, :NUM_FRAMES], plain[:, None].expand(8, NUM_FRAMES))  # clips: as before
    images = joint[:, NUM_FRAMES:].reshape(-1)
    assert ((images == image_labels) | (images == -1)).all()
    assert torch.equal(joint, batches.dropped_labels(config, 5, labels, everything, image_labels))  # f(step)
    # A rank's rows of the global batch get the same labels as in one process.
    half = batches.dropped_labels(config, 5, labels[4:], slice(4, 8), image_labels[8:])
    assert torch.equal(half, joint[4:])
    # Each image is dropped on its own, at the label-dropout rate.
    drops = [batches.dropped_labels(config, s, labels, everything, image_labels) < 0 for s in range(300)]
    drops = torch.stack(drops).float()
    image_rate, clip_rate = drops[..., NUM_FRAMES:].mean(), drops[..., 0].mean()
    assert abs(image_rate - 0.3) < 0.04 and abs(clip_rate - 0.3) < 0.06  # 5 binomial standard errors
    both = (drops[..., NUM_FRAMES] * drops[..., 0]).mean()
    assert abs(both - 0.09) < 0.04  # independent of the clip's drop (0.3 if it followed it)


def test_training_conditions_each_appended_image_on_its_own_label(tmp_path, monkeypatch):
    seen = []
    forward = tiny_training.TinyNet.forward

    def spy(self, x, c_noise, class_labels=None, num_video_frames=None):
        if self.training:
            seen.append(class_labels.clone())
        return forward(self, x, c_noise, class_labels, num_video_frames)

    monkeypatch.setattr(tiny_training.TinyNet, "forward", spy)
    config = small_config("video", class_conditional=True, steps=3, label_dropout=0.0, joint_images=2)
    T.train(config, tmp_path, progress=False)
    dataset, image_dataset = networks_datasets(config)
    from pyoco_lab.training import batches

    steps = batches.step_batches(config, dataset, image_dataset, T.DistEnv.from_env(), 0)
    for labels_seen, (_, labels, _, image_labels) in zip(seen, steps, strict=False):
        assert labels_seen.shape == (4, NUM_FRAMES + 2)
        assert torch.equal(labels_seen[:, :NUM_FRAMES], labels[:, None].expand(4, NUM_FRAMES))
        assert torch.equal(labels_seen[:, NUM_FRAMES:], image_labels.reshape(4, 2))
    assert len(seen) == 3
    # ... and the images' labels are not their clips' (the old behaviour trained them under those).
    assert any(not torch.equal(s[:, NUM_FRAMES:], s[:, :2]) for s in seen)


def networks_datasets(config):
    from pyoco_lab.training import batches

    return batches.build_datasets(config)


# ----------------------------------------------------------------------------------------------
# Text-dropout rates are keyed by encoder name (Table F: T5 0.25, CLIP 0.2; ours: MiniLM 0.1).


def test_text_dropout_is_keyed_by_encoder_name_not_by_order(tmp_path):
    from dataclasses import asdict

    t5, clip = tmp_path / "t5", tmp_path / "clip"
    for folder, key, width in ((t5, "d_model", 8), (clip, "hidden_size", 6)):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({key: width}))

    def rates(encoders, dropout=None):
        extra = {} if dropout is None else {"text_dropout": dropout}
        config = T.preset_config("quick", "video", text_encoders=encoders, **extra)
        specs, probs = T.text_specs(config)
        return dict(zip((spec.partition(":")[0] for spec in specs), probs, strict=True)), config

    forward, backward = f"t5:{t5},clip:{clip}", f"clip:{clip},t5:{t5}"
    assert rates(forward)[0] == rates(backward)[0] == {"t5": 0.25, "clip": 0.2}  # Table F defaults
    assert rates("minilm")[0] == {"minilm": 0.1}
    for encoders in (forward, backward):
        assert rates(encoders, "clip=0.5")[0] == {"t5": 0.25, "clip": 0.5}
        assert rates(encoders, "t5=0.3, clip=0.1,minilm=0.9")[0] == {"t5": 0.3, "clip": 0.1}
        unet = T.unet_config(rates(encoders, "t5=0.3,clip=0.1")[1], num_classes=0)
        assert dict(zip(unet.text_dims, unet.text_drop_probs, strict=True)) == {8: 0.3, 6: 0.1}
    # Stored by name for the encoders in use, so equal settings compare equal on --resume.
    assert rates(backward, "t5=0.3")[1].text_dropout == "clip=0.2,t5=0.3"
    assert rates(backward, "t5=0.3,clip=0.2")[1] == rates(backward, "clip=0.2,t5=0.3,minilm=0.5")[1]
    # A bare number is unambiguous only with exactly one encoder.
    assert rates("minilm", "0.3")[0] == {"minilm": 0.3}
    for ambiguous in ("0.25,0.2", "0.25"):
        with pytest.raises(ValueError, match="bare"):
            rates(forward, ambiguous)
    for bad in ("t6=0.1", "t5=2", "t5=0.1,t5=0.2", "t5=often"):
        with pytest.raises(ValueError, match="NAME=P"):
            rates(forward, bad)
    # Runs written with positional rates load with the rates they trained with.
    stored = asdict(T.preset_config("quick", "video"))
    stored.update(text_encoders=backward, text_dropout="0.25,0.2")
    assert rates(backward, "clip=0.25,t5=0.2")[1] == T.config_from_dict(stored)


def test_iid_override_resets_the_presets_alpha():
    """The video presets carry progressive alpha=2: --noise iid alone must not keep an ignored alpha."""
    assert T.preset_config("quick", "video").alpha == 2.0
    assert T.preset_config("quick", "video", noise="iid").alpha == 0.0
    assert T.preset_config("quick", "video", noise="iid", alpha=0.0).alpha == 0.0
    assert T.preset_config("quick", "video", noise="mixed").alpha == 2.0  # only iid resets it
    assert T.preset_config("ucf-small", "video", noise="iid").alpha == 0.0
    for kind, alpha in (("iid", 2.0), ("mixed", 0.0), ("progressive", 0.0)):  # the notebooks' path
        spec = study_runs.video_run(presets.SETTINGS["smoke"], kind, alpha)
        assert (spec.config.noise, spec.config.alpha) == ("iid", 0.0)


def test_cli_alpha_where_the_prior_ignores_it_fails_in_one_line(capsys, tmp_path):
    code = cli.main(["train", "--phase", "video", "--noise", "iid", "--print-config"])
    assert code == 0 and json.loads(capsys.readouterr().out)["alpha"] == 0.0
    for extra in (
        ["--phase", "video", "--noise", "iid", "--alpha", "2"],
        ["--phase", "image", "--alpha", "1"],
    ):
        assert cli.main(["train", "--out", str(tmp_path / "r"), *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--alpha" in err, err
    assert not (tmp_path / "r").exists()  # refused before any work


# ----------------------------------------------------------------------------------------------
# The finetuning levers of issue #38: temporal layers alone, and their own learning rate.


def test_a_temporal_only_finetune_leaves_every_spatial_weight_of_the_image_model(tmp_path):
    image_run = T.train(small_config("image"), tmp_path / "image", progress=False)
    video_run = T.train(
        small_config("video", train_layers="temporal"), tmp_path / "video", init=image_run, progress=False
    )
    start = networks.inflate_denoiser(T.load_denoiser(image_run)[0], T.load_denoiser(video_run)[1], 0)
    earlier = load_file(str(T.checkpoint_dir(video_run, 4) / T.MODEL_FILE))
    trained = load_file(str(T.checkpoint_dir(video_run, 6) / T.MODEL_FILE))
    temporal = [k for k in trained if ".temporal." in k]
    assert temporal and len(temporal) < len(trained)
    for name, value in trained.items():
        if name in temporal:  # the temporal layers learn from step to step
            assert not torch.equal(value, earlier[name]), name
        else:  # every spatial weight is still the image model's
            assert torch.equal(value, start.state_dict()[name]), name
    # the same finetune with every layer trained moves the spatial weights too
    everything = T.train(small_config("video"), tmp_path / "all", init=image_run, progress=False)
    moved = load_file(str(T.latest_checkpoint(everything) / T.MODEL_FILE))
    assert not torch.equal(moved["net.conv.weight"], start.state_dict()["net.conv.weight"])


def test_temporal_layers_get_their_own_learning_rate_and_neutral_levers_change_nothing():
    config = small_config("video", temporal_lr_scale=10.0)
    model = networks.build_network(config)
    optimizer = T.build_optimizer(config, model)
    scales = sorted(group["lr_scale"] for group in optimizer.param_groups)
    assert scales == [1.0, 10.0]
    temporal = next(g for g in optimizer.param_groups if g["lr_scale"] == 10.0)["params"]
    assert {id(p) for p in temporal} == {id(p) for n, p in model.named_parameters() if ".temporal." in n}
    plain = T.build_optimizer(small_config("video"), networks.build_network(small_config("video")))
    assert len(plain.param_groups) == 1  # the default builds the optimiser exactly as before the levers
    with pytest.raises(ValueError, match="no temporal layers"):
        T.validate_config(small_config("image", train_layers="temporal"))
    with pytest.raises(ValueError, match="temporal_lr_scale must be > 0"):
        T.validate_config(small_config("video", temporal_lr_scale=0.0))
