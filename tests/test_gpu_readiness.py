"""What a GPU run needs, checked without a GPU (issue #25).

Each test here stands for a way a CUDA or multi-GPU run broke or slowed down while every CPU test
passed. A GPU is simulated where it matters by the ``meta`` device: a tensor there has a device that is
not the CPU, so code that drops a tensor back onto the CPU (or draws it there) shows up as a device
mismatch or a wrong recorded device, exactly as it would on ``cuda``.
"""

from __future__ import annotations

import ast
import copy
import functools
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
from tiny_training import install_test_pieces, small_config
from torch.utils._python_dispatch import TorchDispatchMode

import pyoco_lab
from pyoco_lab import devices, edm, noise
from pyoco_lab.analysis import experiments, image_model, inversion
from pyoco_lab.models import build_denoiser, count_parameters, get_config
from pyoco_lab.models.cascade import Cascade
from pyoco_lab.noise import NoisePrior
from pyoco_lab.training import (
    batches,
    distributed,
    load_denoiser,
    loop,
    monitoring,
    networks,
    preset_config,
    train,
)
from pyoco_lab.training.randomness import step_generator, step_seed

COLLECTIVES = ("all_gather", "all_reduce", "broadcast", "reduce", "all_gather_into_tensor", "reduce_scatter")


class _Reached(Exception):
    """A collective was called with every tensor on the group's device (and cannot run on meta)."""


def _tensors(args, kwargs):
    for value in [*args, *kwargs.values()]:
        if torch.is_tensor(value):
            yield value
        elif isinstance(value, list | tuple):
            yield from (v for v in value if torch.is_tensor(v))


@pytest.fixture
def collectives_on(monkeypatch):
    """``collectives_on(device)``: every ``torch.distributed`` collective must get tensors on ``device``
    only -- NCCL refuses CPU tensors, gloo takes anything, so a gloo run alone would never notice. On
    ``meta`` (a stand-in for ``cuda``) the call cannot be carried out and raises ``_Reached``."""
    calls = []

    def install(device: torch.device):
        device = torch.device(device)
        for name in COLLECTIVES:
            real = getattr(dist, name)

            @functools.wraps(real)
            def checked(*args, _real=real, _name=name, **kwargs):
                devices = {t.device for t in _tensors(args, kwargs)}
                calls.append((_name, devices))
                assert devices == {device}, f"dist.{_name} got tensors on {devices}, the group is on {device}"
                if device.type == "meta":
                    raise _Reached(_name)
                return _real(*args, **kwargs)

            monkeypatch.setattr(dist, name, checked)
        return calls

    return install


# ----------------------------------------------------------------------------------------------
# training/distributed.py: the in-sync check gathers on the process group's device.


def test_sync_check_gathers_on_the_weights_device_not_the_cpu(collectives_on, tmp_path):
    # Weights on a non-CPU device (meta stands in for cuda): the old code moved the checksum to the
    # CPU before all_gather, which NCCL rejects at the first checkpoint of every multi-GPU run.
    model = torch.nn.Linear(3, 2, device="meta")
    calls = collectives_on("meta")
    with pytest.raises(_Reached):
        distributed.check_in_sync(model, distributed.DistEnv(0, 2, 0), 1, tmp_path / "sync.json")
    assert [name for name, _ in calls] == ["all_gather"]


def test_sync_check_and_loss_mean_run_under_gloo(collectives_on, tmp_path):
    # The same calls carried out for real by a one-process gloo group, device check included.
    calls = collectives_on("cpu")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = torch.nn.Linear(3, 2)
        distributed.check_in_sync(model, distributed.DistEnv(0, 1, 0), 3, tmp_path / "sync.json")
        loss = torch.tensor(2.5)
        assert distributed.mean_over_ranks(loss, True).item() == 2.5
    finally:
        dist.destroy_process_group()
    assert (tmp_path / "sync.json").is_file()
    assert [name for name, _ in calls] == ["all_gather", "all_reduce"]


# ----------------------------------------------------------------------------------------------
# models/cascade.py: one device for start and churn noise; models never import training.


class _DeviceShrink(torch.nn.Module):
    """D(x; sigma) = x / (1 + sigma^2) with one weight, on ``device``; refuses input from elsewhere."""

    def __init__(self, device):
        super().__init__()
        self.one = torch.nn.Parameter(torch.ones((), device=device), requires_grad=False)
        self.seen = set()

    def forward(self, x, sigma, **cond):
        tensors = [x, sigma, *(v for v in cond.values() if torch.is_tensor(v))]
        self.seen |= {t.device for t in tensors if t.ndim > 0 or t.device.type != "cpu"}
        assert all(t.device == self.one.device for t in tensors if t.ndim > 0), [t.device for t in tensors]
        return x * self.one / (1 + edm.expand_sigma(sigma, x) ** 2)


@pytest.fixture
def strict_generators(monkeypatch):
    """torch.randn / torch.rand as CUDA has them: a generator draws only on its own device. (On the CPU,
    a meta tensor drawn with a CPU generator passes silently; a CUDA one drawn so raises.)"""
    for name in ("randn", "rand"):
        real = getattr(torch, name)

        def strict(*args, _real=real, generator=None, device=None, **kwargs):
            if generator is not None:
                where = torch.device(device) if device is not None else torch.device("cpu")
                assert where == generator.device, f"a {generator.device} generator asked to draw on {where}"
            return _real(*args, generator=generator, device=device, **kwargs)

        monkeypatch.setattr(torch, name, strict)


@pytest.mark.parametrize("sampler", ["heun", "stochastic"])
def test_cascade_samples_on_its_models_device_with_a_cpu_generator(sampler, strict_generators):
    # The models on a non-CPU device (meta for cuda) and the generator on the CPU, as a notebook
    # seeds it: start noise and churn noise both reach the models on their device.
    d = _DeviceShrink("meta")
    cascade = Cascade(d, d, d, None, base_size=8, sr_sizes=(16,))
    out = cascade(
        1,
        prior=NoisePrior("progressive", 2.0),
        generator=torch.Generator().manual_seed(0),
        num_steps=(2, 2, 2),
        sampler=sampler,
        sampler_options={"s_churn": 10.0} if sampler == "stochastic" else None,
    )
    assert {v.device.type for v in out.values()} == {"meta"}
    assert d.seen == {torch.device("meta")}


def test_churn_noise_from_a_cpu_generator_is_the_same_on_any_device(strict_generators):
    prior, x = NoisePrior("mixed", 1.0), torch.zeros(2, 4, 3, 4, 4)
    cpu = edm.prior_noise_sampler(prior, torch.Generator().manual_seed(3))(x, torch.tensor(1.0))
    meta = edm.prior_noise_sampler(prior, torch.Generator().manual_seed(3))(x.to("meta"), torch.tensor(1.0))
    again = edm.prior_noise_sampler(prior, torch.Generator().manual_seed(3))(x, torch.tensor(1.0))
    assert meta.device.type == "meta" and meta.shape == cpu.shape and torch.equal(cpu, again)


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):  # every import, also those hidden inside functions
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_models_never_import_training():
    # models -> training -> models was the package's one import circle (Cascade.from_runs).
    package = Path(pyoco_lab.__file__).parent
    offenders = {
        path.name: sorted(n for n in _imports_of(path) if n.startswith("pyoco_lab.training"))
        for path in sorted((package / "models").glob("*.py"))
    }
    assert not any(offenders.values()), offenders


# ----------------------------------------------------------------------------------------------
# One device rule through load_denoiser and the notebook helpers (notebooks 02, 03, 07).


@pytest.fixture
def gpu_as_meta(monkeypatch):
    """``auto`` resolves to meta (a stand-in for this machine's GPU), and the denoiser records what
    reaches it: each helper must load its model there and feed it there, then stops with _Reached."""
    seen = []
    real = devices.resolve_device
    monkeypatch.setattr(
        devices,
        "resolve_device",
        lambda requested="auto", local_rank=None: (
            torch.device("meta") if str(requested) == "auto" else real(requested, local_rank)
        ),
    )

    real_generator = torch.Generator

    class Generator(real_generator):  # meta has no generators: a device generator there is a CPU one
        def __new__(cls, device="cpu"):
            return real_generator("cpu" if torch.device(device).type == "meta" else device)

    monkeypatch.setattr(torch, "Generator", Generator)

    def forward(self, x, sigma, **cond):
        seen.append((devices.device_of(self), x.device))
        raise _Reached("denoiser called")

    monkeypatch.setattr(edm.Denoiser, "forward", forward)
    return seen


PRETRAINED = "pretrained:lab-tiny-32"  # 32 px: the embedded data CI builds


def _helpers(tmp_path):
    sampler = SimpleNamespace(kind="stochastic", steps=2, options=lambda: {"s_churn": 5.0})
    return {
        "inversion (02, 03)": lambda: inversion.cached_inversion(
            PRETRAINED, tmp_path, count=2, num_frames=4, num_steps=2, progress=False
        ),
        "frame inversion (02)": lambda: inversion.cached_frame_inversion(
            PRETRAINED, tmp_path, per_source=1, num_steps=2, progress=False
        ),
        "image-model samples (07)": lambda: image_model.image_model_quality(
            PRETRAINED, tmp_path, num_samples=2, sampler="heun", num_steps=2
        ),
        "video samples (07)": lambda: experiments.draw_samples(
            PRETRAINED, SimpleNamespace(sampler=sampler), 1
        ),
    }


@pytest.mark.parametrize(
    "helper", ["inversion (02, 03)", "frame inversion (02)", "image-model samples (07)", "video samples (07)"]
)
def test_notebook_helpers_load_and_compute_on_the_runs_device(helper, gpu_as_meta, tmp_path):
    with pytest.raises(_Reached):
        _helpers(tmp_path)[helper]()
    assert gpu_as_meta and all(model == x == torch.device("meta") for model, x in gpu_as_meta), gpu_as_meta


def test_load_denoiser_follows_the_device_rule(gpu_as_meta):
    denoiser, _ = load_denoiser(PRETRAINED)
    assert devices.device_of(denoiser) == torch.device("meta")
    denoiser, _ = load_denoiser(PRETRAINED, device="cpu")
    assert devices.device_of(denoiser) == torch.device("cpu")


# ----------------------------------------------------------------------------------------------
# training/loop.py: noise on the device, a launch-light update, host syncs only at sync points,
# determinism switched per run.


def test_training_noise_and_sigma_are_drawn_on_the_runs_device(monkeypatch):
    requested = []

    def recording(seed, stream, step, device="cpu"):
        requested.append(torch.device(device))
        return torch.Generator().manual_seed(step_seed(seed, stream, step))  # meta has no generators

    config = preset_config("quick", "video", resolution=8, num_frames=4, joint_images=1, alpha=1.0)
    monkeypatch.setattr(loop, "step_generator", recording)
    eps = loop.prior_noise(config, 3, (config.batch_size, 5, 3, 8, 8), torch.device("meta"))
    sigma = loop.training_sigma(config, 3, torch.device("meta"))
    assert eps.device.type == sigma.device.type == "meta"
    assert requested == [torch.device("meta")] * 2


def test_training_noise_on_the_cpu_is_the_seeded_stream_it_always_was():
    # Bitwise resume on the CPU rests on these being the (seed, step) streams of a CPU generator.
    config = preset_config("quick", "video", resolution=8, num_frames=4, joint_images=1, alpha=1.0)
    shape = (config.batch_size, 5, 3, 8, 8)
    expected = noise.sample_joint_noise(
        config.noise, shape, config.alpha, num_video_frames=4, generator=step_generator(config.seed, 3, 7)
    )
    assert torch.equal(loop.prior_noise(config, 7, shape), expected)
    z = torch.randn(config.batch_size, generator=step_generator(config.seed, 2, 7))
    assert torch.equal(loop.training_sigma(config, 7), (z * config.p_std + config.p_mean).exp())


def _update_ops(config, model, ema) -> int:
    """aten ops of one optimiser update as the loop does it: clip, Adam, EMA."""
    optimizer = loop.build_optimizer(config, model)
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3)
    optimizer.step()  # the first step creates Adam's state (two zero tensors per parameter): once a run
    ops = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops.append(func)
            return func(*args, **(kwargs or {}))

    with Count():
        loop.clip_gradients(model, config.grad_clip)
        optimizer.step()
        loop.update_ema(ema, model, 5, config.ema_decay)
    return len(ops)


def test_one_optimiser_update_launches_a_bounded_number_of_ops():
    # The per-parameter Adam, clip and EMA launched ~20 ops per parameter tensor: ~2,900 of the
    # ~4,100 ops of an image step, launch-bound on a GPU. Fused Adam + foreach clip and EMA launch a
    # handful whatever the parameter count.
    config = preset_config("quick", "image", resolution=16, grad_clip=1.0)
    model = build_denoiser(get_config("tiny"))
    ema = copy.deepcopy(model).requires_grad_(False)
    tensors = len(list(model.parameters()))
    assert tensors > 100
    assert _update_ops(config, model, ema) <= 40, f"{tensors} parameter tensors"


def test_training_syncs_with_the_host_only_at_log_checkpoint_and_sample_steps(tmp_path, monkeypatch):
    install_test_pieces(monkeypatch)
    syncs = []
    watched = {loop.__file__, monitoring.__file__}
    for name in ("item", "__float__", "__bool__", "__int__", "tolist"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename in watched:
                syncs.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    config = small_config("image", steps=8, log_every=4, checkpoint_every=8, sample_every=0)
    train(config, tmp_path, progress=False)
    # Two sync points (steps 4 and 8), each: the divergence flag, the interval's loss and grad norm.
    assert len(syncs) <= 6, syncs


def test_a_run_switches_determinism_on_for_itself_only(tmp_path, monkeypatch):
    install_test_pieces(monkeypatch)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen = []
    build = networks.build_network

    def recording(config, num_classes=0):
        seen.append((torch.are_deterministic_algorithms_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG")))
        return build(config, num_classes)

    monkeypatch.setattr(networks, "build_network", recording)
    before = torch.are_deterministic_algorithms_enabled()
    train(small_config("image", steps=2, deterministic=True), tmp_path, progress=False)
    # During the run: deterministic kernels, and the cuBLAS workspace set before any CUDA work
    # (on any device: a run that later moves to CUDA must not find it missing).
    assert seen == [(True, ":4096:8")]
    assert torch.are_deterministic_algorithms_enabled() == before  # a notebook kernel gets its state back


# ----------------------------------------------------------------------------------------------
# Sampling: TF32 and cuDNN autotuning on CUDA, for sampling only.


def test_sampling_mode_turns_on_tf32_and_autotuning_on_cuda_and_restores_them():
    flags = ("allow_tf32", "benchmark")
    before = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    with devices.sampling_mode("cuda"):  # the flags are plain settings: no GPU needed to set them
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.benchmark, flags
        assert torch.backends.cudnn.allow_tf32
    with devices.sampling_mode("cpu"):
        assert torch.backends.cuda.matmul.allow_tf32 == before[0]
    after = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    assert after == before


def test_periodic_and_notebook_sampling_run_in_sampling_mode(tmp_path, monkeypatch):
    entered = []
    real = devices.sampling_mode
    monkeypatch.setattr(devices, "sampling_mode", lambda device: entered.append(str(device)) or real(device))
    config = preset_config("quick", "video", resolution=8, num_frames=4, num_samples=1, sample_steps=2)
    d = _DeviceShrink("cpu")
    monitoring.save_samples(config, d, tmp_path, 1, "cpu", 0)
    image_model.sample_images(d, 1, 8, num_steps=2)
    assert entered == ["cpu", "cpu"]


# ----------------------------------------------------------------------------------------------
# models/configs.py: lab-l at 64 px (the standard preset) is the documented model.


def _documented_lab_params() -> dict[str, float]:
    docs = (Path(pyoco_lab.__file__).parents[1] / "docs" / "models.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| lab-s / lab-m / lab-l |"))
    counts = re.findall(r"([\d.]+)M", row.split("|")[3])
    return dict(zip(("lab-s", "lab-m", "lab-l"), (float(c) * 1e6 for c in counts), strict=True))


@pytest.mark.parametrize("preset", ["standard"])
def test_the_presets_video_model_at_its_resolution_is_the_documented_one(preset):
    config = preset_config(preset, "video")
    unet = networks.unet_config(config, 0)
    documented = _documented_lab_params()[config.model]
    assert count_parameters(unet) == pytest.approx(documented, rel=0.005)  # docs round to 0.01M
    # Spatial self-attention at the lowest U-Net level, as at 32 px, not only in the middle block.
    lowest = config.resolution // 2 ** (len(unet.channel_mult) - 1)
    assert unet.attention_resolutions == (lowest,)


def test_smaller_inputs_keep_the_listed_attention():
    # cpu-long's 16 px models and the shipped lab-tiny-16 were trained with the listed resolutions.
    config = preset_config("quick", "image", resolution=16)
    assert networks.unet_config(config, 0).attention_resolutions == get_config("tiny").attention_resolutions


# ----------------------------------------------------------------------------------------------
# training/batches.py: batches travel as the stored uint8 bytes, pinned for a CUDA run, copied
# without blocking, and become floats on the device -- the very floats the workers made before.


class _StoredBytes(torch.utils.data.Dataset):
    """Items as the embedded datasets hold them with ``uint8=True``: bytes, a function of the index."""

    num_classes = 3

    def __init__(self, key: str, frames: int = 4):
        self.key, self.frames = key, frames

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(index)
        shape = (self.frames, 3, 8, 8) if self.key == "video" else (3, 8, 8)
        return {self.key: torch.randint(0, 256, shape, generator=g, dtype=torch.uint8), "label": index % 3}


def _old_worker_floats(stored: torch.Tensor) -> torch.Tensor:
    # What the embedded datasets computed in the workers before (EmbeddedVideoDataset._to_float).
    return torch.from_numpy(np.array(stored.numpy(), dtype=np.float32)) / 127.5 - 1.0


def test_the_device_side_conversion_gives_the_workers_old_floats_bit_for_bit():
    every_byte = torch.arange(256, dtype=torch.uint8)
    old, new = _old_worker_floats(every_byte), batches.to_device(every_byte, "cpu")
    assert new.dtype == torch.float32
    assert torch.equal(new.view(torch.int32), old.view(torch.int32))  # the bits, not just the values
    assert new.min() == -1 and new.max() == 1
    # Floats (UCF-101's resized frames) pass through as float32, unchanged.
    floats = torch.rand(2, 3, 4, 4, dtype=torch.float64) * 2 - 1
    assert torch.equal(batches.to_device(floats, "cpu"), floats.float())


def test_batches_leave_the_loader_as_stored_bytes_and_reach_the_step_as_the_old_floats():
    config = small_config("video", joint_images=2, steps=2)
    steps = batches.step_batches(
        config, _StoredBytes("video"), _StoredBytes("image"), distributed.DistEnv(), 0
    )
    for x, _, appended, _ in steps:
        assert x.dtype == appended.dtype == torch.uint8  # a quarter of float32's bytes to move
        batch = batches.training_batch(config, x, appended, "cpu")
        old_x = torch.cat(
            [_old_worker_floats(x), _old_worker_floats(appended).reshape(x.shape[0], 2, *x.shape[2:])], dim=1
        )
        assert batch.dtype == torch.float32 and torch.equal(batch, old_x)


def test_the_embedded_data_is_loaded_as_stored_bytes_for_training(monkeypatch):
    opened = []
    monkeypatch.setattr(pyoco_lab.data, "EmbeddedVideoDataset", lambda *a, **kw: opened.append(kw))
    monkeypatch.setattr(pyoco_lab.data, "EmbeddedFramesDataset", lambda *a, **kw: opened.append(kw))
    batches.build_datasets(small_config("video", joint_images=1))
    assert [kw.get("uint8") for kw in opened] == [True, True]


@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true but no accelerator")
@pytest.mark.parametrize(("device", "pinned"), [("cuda:0", True), ("cuda", True), ("cpu", False)])
def test_the_loaders_pin_their_batches_for_a_cuda_run(monkeypatch, device, pinned):
    created = []
    real = torch.utils.data.DataLoader

    def recording(*args, **kwargs):
        created.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.utils.data, "DataLoader", recording)
    config = small_config("video", joint_images=1)
    env = distributed.DistEnv()
    batches.step_batches(config, _StoredBytes("video"), _StoredBytes("image"), env, 0, device)  # no transfer
    assert [kwargs["pin_memory"] for kwargs in created] == [pinned, pinned]  # the clips and the images


class _Copies(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.copies = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default and kwargs.get("device") is not None:
            self.copies.append((args[0].dtype, kwargs["device"].type, kwargs.get("non_blocking", False)))
        return func(*args, **kwargs)


def test_a_batch_moves_to_the_device_as_bytes_without_blocking_and_is_converted_there():
    config = small_config("video", joint_images=2)
    x, appended = torch.zeros(4, 4, 3, 8, 8, dtype=torch.uint8), torch.zeros(8, 3, 8, 8, dtype=torch.uint8)
    with _Copies() as seen:
        batch = batches.training_batch(config, x, appended, torch.device("meta"))  # meta: the GPU's stand-in
    assert batch.device.type == "meta" and batch.dtype == torch.float32 and batch.shape == (4, 6, 3, 8, 8)
    batch_copies = [c for c in seen.copies if c[0] == torch.uint8]
    assert batch_copies == [(torch.uint8, "meta", True)] * 2  # clips and images, each on its own
