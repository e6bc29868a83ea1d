"""Training compute, counted rather than timed: the FLOPs of one training step of a config.

Forward + backward FLOPs of the EDM denoising loss on one batch item (a frame in the image phase; a clip of
F frames plus the appended images in the video phase), counted by ``torch.utils.flop_counter.FlopCounterMode``
on the meta device (no weights, no data: seconds on any CPU). Convolutions and matmuls are counted,
element-wise ops are not, so the figures are a floor that is the same on every machine -- what "equal
compute" between a finetune (image model + video steps) and training from scratch can be measured in
(issue #24: "finetuning starts from an image model that cost compute too"). ``benchmarks/estimate_flops.py``
prints them per preset, with the activation memory saved for the backward pass.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from pyoco_lab import edm
from pyoco_lab.training.config import TrainConfig
from pyoco_lab.training.networks import build_network


def item_cost(config: TrainConfig) -> tuple[float, float]:
    """(FLOPs of forward + backward, bytes saved for backward in fp32) of one batch item of ``config``."""
    with torch.device("meta"):
        denoiser = build_network(config)
        frames = config.num_frames + config.joint_images if config.phase == "video" else None
        shape = (1, 3, config.resolution, config.resolution)
        x = torch.zeros((1, frames, *shape[1:]) if frames else shape)
        eps, sigma = torch.zeros_like(x), torch.ones(1)
    cond = {"num_video_frames": config.num_frames} if config.phase == "video" and config.joint_images else {}
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with FlopCounterMode(display=False) as counter, hooks:
        loss = edm.edm_loss(denoiser, x, eps, sigma, denoiser.sigma_data, **cond).mean()
        loss.backward()
    return float(counter.get_total_flops()), float(saved[0])


def step_flops(config: TrainConfig) -> float:
    """FLOPs of one optimiser step: one item's times the global batch."""
    return item_cost(config)[0] * config.batch_size


def equal_compute_steps(video: TrainConfig, image: TrainConfig, image_steps: int) -> int:
    """Steps of ``video`` whose FLOPs match an image model of ``image_steps`` steps of ``image``, rounded up:
    what a from-scratch run adds to a finetune's steps to have spent the finetune's total compute."""
    return math.ceil(image_steps * step_flops(image) / step_flops(video))
