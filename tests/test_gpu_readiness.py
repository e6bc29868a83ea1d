"""What a GPU run needs, checked without a GPU (issue #25).

Each test here stands for a way a CUDA or multi-GPU run broke or slowed down while every CPU test
passed. A GPU is simulated where it matters by the ``meta`` device: a tensor there has a device that is
not the CPU, so code that drops a tensor back onto the CPU (or draws it there) shows up as a device
mismatch or a wrong recorded device, exactly as it would on ``cuda``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist

import pyoco_lab
from pyoco_lab import devices, edm
from pyoco_lab.analysis import experiments, image_model, inversion
from pyoco_lab.models.cascade import Cascade
from pyoco_lab.noise import NoisePrior
from pyoco_lab.training import distributed, load_denoiser

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
            PRETRAINED, tmp_path, num_frames=4, num_samples=2, sampler="heun", num_steps=2
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
