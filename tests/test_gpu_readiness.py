"""What a GPU run needs, checked without a GPU (issue #25).

Each test here stands for a way a CUDA or multi-GPU run broke or slowed down while every CPU test
passed. A GPU is simulated where it matters by the ``meta`` device: a tensor there has a device that is
not the CPU, so code that drops a tensor back onto the CPU (or draws it there) shows up as a device
mismatch or a wrong recorded device, exactly as it would on ``cuda``.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.distributed as dist

from pyoco_lab.training import distributed

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
