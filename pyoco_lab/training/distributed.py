"""Distributed set-up: plain PyTorch DDP under ``torchrun``.

Ranks are read from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; the global batch is fixed and every
rank takes its own slice of it (:meth:`DistEnv.batch_slice`), so the same command gives the same
optimisation single-process or on several GPUs. A run started directly is rank 0 of 1.

Gradient accumulation splits a rank's slice further into micro-batches (:meth:`DistEnv.micro_batches`):
the global batch is cut into ``world_size x accumulation`` equal shards, and a rank's micro-batch m
is shard ``rank x accumulation + m`` -- the very rows (and per-shard draws) that process of a run with
``world_size x accumulation`` processes and no accumulation gets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from pyoco_lab.fileio import atomic_write_text


@dataclass(frozen=True)
class DistEnv:
    """This process's place among the ``torchrun`` processes (rank 0 of 1 when run directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def from_env() -> DistEnv:
        return DistEnv(
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )

    def batch_slice(self, global_batch: int) -> slice:
        """This rank's rows [lo, hi) of a global batch."""
        per_rank = global_batch // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def micro_batches(self, global_batch: int, accumulation: int = 1) -> list[tuple[int, slice]]:
        """(shard, rows [lo, hi) of the global batch) of each of this rank's ``accumulation`` micro-batches.

        Raises ValueError when the global batch does not split into ``world_size x accumulation``
        equal shards (checked by :func:`~pyoco_lab.training.loop.train` before any work).
        """
        shards = self.world_size * accumulation
        if global_batch % shards:
            raise ValueError(
                f"batch_size {global_batch} must be divisible by the {self.world_size} process(es) x "
                f"{accumulation} micro-batch(es) of --grad-accumulation; pick a batch size that is a "
                f"multiple of {shards}"
            )
        size = global_batch // shards
        mine = range(self.rank * accumulation, (self.rank + 1) * accumulation)
        return [(shard, slice(shard * size, (shard + 1) * size)) for shard in mine]


def init_distributed(env: DistEnv, device: torch.device) -> bool:
    """Join the process group when launched by torchrun with more than one process."""
    if env.world_size == 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    return True


def barrier(distributed: bool) -> None:
    if distributed:
        dist.barrier()


def from_main(value, distributed: bool):
    """Rank 0's ``value`` (a picklable object) on every rank: one decision for the whole job."""
    if not distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(value: torch.Tensor, distributed: bool) -> torch.Tensor:
    """A detached copy of ``value`` averaged over the ranks (the value itself when single-process)."""
    reported = value.detach().clone()
    if distributed:
        dist.all_reduce(reported, op=dist.ReduceOp.AVG)
    return reported


def check_in_sync(model: torch.nn.Module, env: DistEnv, step: int, record: Path) -> None:
    """All ranks must hold the same weights (DDP averages gradients, so updates are identical).

    Rank 0 records every rank's weight checksum in ``record`` (JSON) before any verdict, so a
    divergence leaves evidence behind.
    """
    # The checksum stays on the weights' device: NCCL only moves CUDA tensors, so a CPU tensor here
    # would crash the first checkpoint of every multi-GPU run. Only the gathered result comes back.
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    gathered = [torch.zeros_like(checksum) for _ in range(env.world_size)]
    dist.all_gather(gathered, checksum)
    values = torch.cat(gathered).cpu().tolist()
    if env.is_main:
        atomic_write_text(record, json.dumps({"step": step, "checksums": values}))
    if len(set(values)) != 1:
        raise RuntimeError(f"ranks diverged at step {step}: weight checksums {values}")
