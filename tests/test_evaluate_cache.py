"""eval.json as a cache that holds the right number: keyed by checkpoint, sampler, samples, seed, batch,
weights and protocol; metric weight files checked before any sampling; ``--device`` checked at the door.

The run is real on disk (config.json and ``save_checkpoint`` folders) with a tiny conv net in place of the
U-Net, small in-memory clips in place of the embedded dataset and an untrained lab classifier, so a full
``evaluate_run`` takes well under a second on CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pyoco_lab import cli, devices, edm, sampling
from pyoco_lab import evaluation as E
from pyoco_lab import training as T
from pyoco_lab.analysis import experiments, presets
from pyoco_lab.evaluation import controls, pipeline, references
from pyoco_lab.fileio import sha256_file
from pyoco_lab.metrics import lab, networks
from pyoco_lab.training import networks as training_networks
from pyoco_lab.training.checkpoints import write_run_meta

RESOLUTION, FRAMES, SAMPLES, STEPS = 16, 4, 4, 2


class _TinyNet(nn.Module):
    """Stands in for the U-Net: the raw EDM network F(x, c_noise), one conv per frame."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x, c_noise, class_labels=None, num_video_frames=None):
        return self.conv(x.reshape(-1, *x.shape[-3:])).reshape(x.shape)


class _Clips(torch.utils.data.Dataset):
    num_classes = 3

    def __init__(self, split: str, size: int = 8):
        self.offset, self.size = (0 if split == "train" else 100), size

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.offset + i)
        base = torch.rand(1, 3, RESOLUTION, RESOLUTION, generator=g) * 1.6 - 0.8
        drift = torch.linspace(0, 0.2, FRAMES).view(FRAMES, 1, 1, 1)
        return {"video": (base + drift).clamp(-1, 1), "label": i % 3}


def _save(run, step: int, scale: float) -> None:
    net = edm.Denoiser(_TinyNet())
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(scale)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    T.save_checkpoint(run, step, model=net, ema=net, optimizer=optimizer, complete=True)


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    """A video run with checkpoints at steps 100 and 200 (different EMA weights), and a sampling counter."""
    monkeypatch.setattr(
        training_networks, "build_network", lambda config, num_classes=0: edm.Denoiser(_TinyNet())
    )
    monkeypatch.setattr(references, "EmbeddedVideoDataset", lambda root, res, split, frames: _Clips(split))

    def classifier(*args, **kwargs):
        torch.manual_seed(0)
        return lab.LabClassifier(num_classes=3, width=4)

    monkeypatch.setattr(lab, "lab_classifier", classifier)
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("PYOCO_WEIGHTS", str(weights))
    config = T.preset_config(
        "quick", "video", resolution=RESOLUTION, num_frames=FRAMES, noise="mixed", alpha=1.0, steps=200
    )
    run = tmp_path / "run"
    write_run_meta(run, config, None, 0, 1)
    _save(run, 100, 0.01)
    _save(run, 200, 0.02)
    calls = []
    real_sample = sampling.sample_videos

    def counting_sample(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(pipeline, "sample_videos", counting_sample)
    return run, weights, calls


def _evaluate(target, **kwargs):
    options = dict(num_samples=SAMPLES, num_steps=STEPS, device="cpu", progress=False)
    return E.evaluate_run(target, **{**options, **kwargs})


def _stored(run) -> dict:
    return json.loads((run / E.EVAL_FILE).read_text())


# ----------------------------------------------------------------------------------------------------
# (a) one entry per checkpoint, recording the checkpoint evaluated


def test_older_checkpoint_gets_its_own_entry_and_never_overwrites_the_newest(tiny_run):
    run, _, calls = tiny_run
    old, new = T.checkpoint_dir(run, 100), T.checkpoint_dir(run, 200)
    newest = _evaluate(run)
    older = _evaluate(old)
    stored = _stored(run)
    assert len(stored) == 2 and len(calls) == 2
    by_step = {entry["settings"]["checkpoint_step"]: (key, entry) for key, entry in stored.items()}
    assert set(by_step) == {100, 200}
    key_new, entry_new = by_step[200]
    key_old, entry_old = by_step[100]
    assert entry_new["settings"]["checkpoint"] == str(new) and entry_old["settings"]["checkpoint"] == str(old)
    assert key_new.startswith(f"heun-{STEPS}steps-n{SAMPLES}-seed0-step0000200-")
    assert key_old.startswith(f"heun-{STEPS}steps-n{SAMPLES}-seed0-step0000100-")
    # The newest checkpoint's numbers are still its own, not the older checkpoint's.
    assert entry_new["generated"] == newest["generated"] and entry_old["generated"] == older["generated"]
    assert newest["generated"] != older["generated"]
    sha = hashlib.sha256((new / T.EMA_FILE).read_bytes()).hexdigest()
    assert entry_new["settings"]["ema_sha256"] == sha and entry_new["settings"]["key"] == key_new


def test_key_is_readable_and_hashes_every_part_that_decides_the_number(tiny_run):
    run, _, _ = tiny_run
    base = dict(num_samples=SAMPLES, sampler="heun", num_steps=STEPS, device="cpu")
    key = E.evaluation_key(run, **base)
    assert key.key.startswith(f"heun-{STEPS}steps-n{SAMPLES}-seed0-step0000200-")
    assert len(key.key.rsplit("-", 1)[1]) == 12
    assert key.checkpoint == T.checkpoint_dir(run, 200)
    changes = [
        dict(seed=1),
        dict(sampler="euler"),
        dict(num_steps=STEPS + 1),
        dict(num_samples=SAMPLES + 1),
        dict(batch_size=2),  # the mixed prior draws its shared noise batch by batch
        dict(max_real=16),
        dict(sampler="stochastic", sampler_options={"s_churn": 1.0}),
    ]
    keys = {E.evaluation_key(run, **{**base, **change}).key for change in changes}
    assert len(keys) == len(changes) and key.key not in keys
    assert E.evaluation_key(T.checkpoint_dir(run, 100), **base).key != key.key
    # Same numbers, same key: s_churn 0 and 0.0 are one evaluation.
    stochastic = {**base, "sampler": "stochastic"}
    assert (
        E.evaluation_key(run, **stochastic, sampler_options={"s_churn": 0}).key
        == E.evaluation_key(run, **stochastic, sampler_options={"s_churn": 0.0}).key
    )


def test_batch_size_changes_the_samples_of_the_mixed_prior():
    """Why batch_size is in the key: the same seed, other batches, other videos."""
    from pyoco_lab.noise import NoisePrior

    def gaussian(x, sigma):
        sigma = sigma.reshape(-1, *([1] * (x.ndim - 1)))
        return x * 0.25 / (0.25 + sigma**2)

    kwargs = dict(sampler="euler", num_steps=2, seed=0, progress=False)
    prior = NoisePrior("mixed", 1.0)
    a = sampling.sample_videos(gaussian, prior, (4, 3, 8, 8), 6, batch_size=2, **kwargs)
    b = sampling.sample_videos(gaussian, prior, (4, 3, 8, 8), 6, batch_size=6, **kwargs)
    assert not torch.allclose(a, b)


# ----------------------------------------------------------------------------------------------------
# (b) notebooks reuse an entry only when every part of the key matches


def test_experiments_evaluate_reuses_only_an_exact_match(tiny_run):
    run, _, calls = tiny_run
    s = presets.settings("smoke", eval_samples=SAMPLES, sample_steps=STEPS)
    # An entry under the old key format (which ignored the checkpoint) must not be served, nor crash.
    stale = {"generated": {"FVD-lab": -1.0}, "real-test": {}, "skipped": {}}
    (run / E.EVAL_FILE).write_text(json.dumps({f"heun-{STEPS}steps-n{SAMPLES}-seed0": stale}))
    first = experiments.evaluate(run, s, progress=False)
    assert len(calls) == 1 and first["generated"] != stale["generated"]
    assert first["settings"]["checkpoint"] == str(T.checkpoint_dir(run, 200))
    again = experiments.evaluate(run, s, progress=False)
    assert len(calls) == 1 and again == json.loads(json.dumps(first))  # read back, not sampled
    experiments.evaluate(run, s, seed=1, progress=False)
    assert calls == [0, 1]  # another seed: sampled
    stored = _stored(run)
    assert f"heun-{STEPS}steps-n{SAMPLES}-seed0" in stored  # the old entry is left alone
    assert len(stored) == 3

    # Another sampler, sample count or batch size is another evaluation; the cache answers None.
    assert E.cached_evaluation(run, SAMPLES, "heun", STEPS) is not None
    assert E.cached_evaluation(run, SAMPLES, "euler", STEPS) is None
    assert E.cached_evaluation(run, SAMPLES + 2, "heun", STEPS) is None
    assert E.cached_evaluation(run, SAMPLES, "heun", STEPS, batch_size=2) is None
    E.evaluate_run(run, SAMPLES, "euler", STEPS, progress=False, reuse=True)
    assert len(calls) == 3

    # The run trains on: a newer checkpoint is a new evaluation, the older entry stays.
    _save(run, 300, 0.03)
    newer = experiments.evaluate(run, s, progress=False)
    assert len(calls) == 4 and newer["settings"]["checkpoint_step"] == 300


def test_metric_weight_file_hash_is_part_of_the_key(tiny_run):
    run, weights, calls = tiny_run
    base = E.evaluation_key(run, SAMPLES, "heun", STEPS, device="cpu").key
    _save_scripted(_I3D(400), weights / networks.I3D.filename)
    with pytest.warns(networks.WeightsHashWarning, match="no published hash recorded in the lab"):
        result = _evaluate(run, reuse=True)
    assert result["settings"]["key"] != base and f"FVD-{FRAMES}f" in result["generated"]
    assert "FVD" not in result["generated"]  # FVD is defined on 16-frame clips; these have 4
    record = result["settings"]["metric_weights"][networks.I3D.filename]
    assert record["sha256"] == hashlib.sha256((weights / networks.I3D.filename).read_bytes()).hexdigest()
    assert record["published_sha256"] is None and record["output_width"] == 400
    _save_scripted(_I3D(400, scale=2.0), weights / networks.I3D.filename)  # another file, another FVD
    assert E.cached_evaluation(run, SAMPLES, "heun", STEPS, device="cpu") is None
    # A C3D file is not used by 4-frame clips (IS needs 16), so it does not change the key.
    key = E.evaluation_key(run, SAMPLES, "heun", STEPS, device="cpu").key
    _save_scripted(_C3D(101), weights / networks.C3D.filename)
    assert E.evaluation_key(run, SAMPLES, "heun", STEPS, device="cpu").key == key
    assert len(calls) == 1


def test_broken_eval_json_is_reported_before_sampling(tiny_run):
    run, _, calls = tiny_run
    (run / E.EVAL_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="eval.json is not valid JSON"):
        _evaluate(run)
    assert calls == []


# ----------------------------------------------------------------------------------------------------
# (c), (d) metric weight files: checked before any sampling; width and hash


class _I3D(nn.Module):
    """I3D's call convention, with an output width of choice."""

    def __init__(self, width: int, scale: float = 1.0):
        super().__init__()
        self.head = nn.Linear(3, width)
        with torch.no_grad():
            self.head.weight.fill_(scale / 255)
            self.head.bias.copy_(torch.linspace(0, 1, width))

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        return self.head(x.float().mean(dim=(2, 3, 4)))


class _C3D(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.head = nn.Linear(3, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(x.float().mean(dim=(2, 3, 4)) / 255.0), dim=1)


class _Plain(nn.Module):
    """A TorchScript network that does not take I3D's keyword arguments."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean(dim=(2, 3, 4))


def _save_scripted(module: nn.Module, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))


def test_wrong_width_i3d_is_refused_before_any_sampling(tiny_run, monkeypatch):
    run, weights, _ = tiny_run

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before the metric weights were checked")

    monkeypatch.setattr(pipeline, "sample_videos", no_sampling)
    monkeypatch.setattr(T, "load_denoiser", no_sampling)
    _save_scripted(_I3D(512), weights / networks.I3D.filename)
    with pytest.raises(ValueError) as error:
        _evaluate(run)
    message = str(error.value)
    assert networks.I3D.filename in message and "512" in message and "400" in message
    assert "replace it with" in message
    assert not (run / E.EVAL_FILE).exists()

    _save_scripted(_Plain(), weights / networks.I3D.filename)
    with pytest.raises(ValueError, match="failed on a dummy input"):
        _evaluate(run)
    torch.save({"not": torch.zeros(1)}, weights / networks.I3D.filename)
    with pytest.raises(ValueError, match="not a TorchScript file"):
        _evaluate(run)


def test_check_detector_widths_and_hash_warnings(tmp_path):
    _save_scripted(_I3D(400), tmp_path / networks.I3D.filename)
    _save_scripted(_C3D(101), tmp_path / networks.C3D.filename)
    sha = hashlib.sha256((tmp_path / networks.I3D.filename).read_bytes()).hexdigest()
    expected = "ab" * 32
    published = dataclasses.replace(networks.I3D, sha256=expected)
    with pytest.warns(networks.WeightsHashWarning) as record:
        check = networks.check_detector(published, tmp_path, num_frames=8, resolution=16)
    message = str(record[0].message)
    assert sha in message and expected in message and networks.I3D.filename in message
    assert check.sha256 == sha and check.width == 400
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the published hash: no warning at all
        networks.check_detector(dataclasses.replace(networks.I3D, sha256=sha), tmp_path, resolution=16)
    with pytest.warns(networks.WeightsHashWarning, match="no published hash recorded in the lab; record it"):
        checks = networks.check_detectors(tmp_path, num_frames=8, resolution=16)
    assert set(checks) == {networks.I3D.filename, networks.C3D.filename}  # Inception absent: left to skips

    _save_scripted(_C3D(10), tmp_path / networks.C3D.filename)
    with pytest.raises(ValueError, match=r"returns 10 values per input, IS expects 101"):
        networks.check_detector(networks.C3D, tmp_path, resolution=16)


# ----------------------------------------------------------------------------------------------------
# (e) --device at the door


@pytest.mark.parametrize("device", ["gpu0", "cuda:x", "cpu:3", ""])
def test_bad_device_values_exit_2_with_one_line(device, tiny_run, capsys):
    run, _, calls = tiny_run
    assert cli.main(["evaluate", str(run), "--device", device, "--no-write"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device" in err and "pass auto, cpu, cuda or cuda:N" in err
    assert calls == []


def test_cuda_devices_are_checked_against_the_machine(tiny_run, capsys, monkeypatch):
    run, _, calls = tiny_run
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["evaluate", str(run), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CUDA is not available" in err and "--device cpu" in err
    # Checked at the door: before the run folder is even looked at.
    assert cli.main(["evaluate", str(run / "nowhere"), "--device", "cuda:0"]) == 2
    assert "--device" in capsys.readouterr().err

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert cli.main(["evaluate", str(run), "--device", "cuda:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 CUDA device" in err and "cuda:0" in err
    assert devices.validate_device("cuda:0") == torch.device("cuda:0")
    assert devices.validate_device("auto") == torch.device("cuda")
    assert calls == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.validate_device("auto") == torch.device("cpu") == devices.validate_device("CPU")


def test_metric_network_cache_keys_follow_the_weights_not_the_file(tmp_path):
    """The controls' and real rows' caches are keyed by the metric networks' weights: a file that differs only
    in its metadata (e.g. a training report with a wall time, as on another machine) shares the cache entry,
    while one changed weight does not."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, tmp_path / "a.safetensors", metadata={"report": '{"wall_s": 1.0}'})
    save_file(weights, tmp_path / "b.safetensors", metadata={"report": '{"wall_s": 2.0}'})
    assert sha256_file(tmp_path / "a.safetensors") != sha256_file(tmp_path / "b.safetensors")

    twin = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    twin.load_state_dict(load_file(tmp_path / "b.safetensors"))
    assert networks.weights_sha256(twin) == networks.weights_sha256(model)
    with torch.no_grad():
        twin[0].weight[0, 0, 0, 0] += 1e-6
    assert networks.weights_sha256(twin) != networks.weights_sha256(model)
    twin.load_state_dict(weights)
    twin[1].num_batches_tracked += 1  # buffers are weights too: they change what the network computes
    assert networks.weights_sha256(twin) != networks.weights_sha256(model)

    twin.load_state_dict(weights)
    config = T.TrainConfig(dataset="embedded", resolution=16, num_frames=4)
    assert controls._controls_key(config, 8, "train", 0, model, model) == controls._controls_key(
        config, 8, "train", 0, twin, twin
    )
    twin[0].bias.data += 1.0
    assert controls._controls_key(config, 8, "train", 0, model, model) != controls._controls_key(
        config, 8, "train", 0, twin, model
    )
