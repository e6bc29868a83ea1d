"""Logging and samples: the progress bar, ``log.csv`` + TensorBoard scalars, and the periodic EMA
samples drawn with the run's own noise prior (written as GIF + MP4, or PNG for images).

Everything here runs on rank 0 only and never changes what is trained.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from pyoco_lab import devices, edm, media, noise
from pyoco_lab.progress import tqdm
from pyoco_lab.training.batches import network_conditioning
from pyoco_lab.training.config import TrainConfig
from pyoco_lab.training.randomness import STREAM_SAMPLES, step_generator


class RunLogger:
    """Progress bar + CSV + TensorBoard on rank 0. On resume, rows after the resumed step are dropped.

    :meth:`step` takes each step's loss and gradient norm as device tensors and sums them there;
    every ``log_every`` steps (and at the end, :func:`log_due`) one row with the interval's mean loss
    and throughput is written -- the only host syncs of the interval.
    """

    COLUMNS = ("step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s")

    def __init__(self, run_dir: Path, config: TrainConfig, start_step: int, *, enabled: bool, progress: bool):
        self.config, self.enabled = config, enabled
        self.bar = tqdm(
            total=config.steps,
            initial=start_step,
            disable=not (progress and enabled),
            desc=f"train {config.phase}",
            unit="step",
            dynamic_ncols=True,
        )
        self.tic, self.interval_loss, self.interval_steps = time.perf_counter(), 0.0, 0
        if not enabled:
            return
        self.path = run_dir / "log.csv"
        rows = []
        if self.path.is_file():
            with open(self.path) as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= start_step]
        tmp = self.path.with_name(".log.csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)

    def step(self, done: int, loss: torch.Tensor, lr: float, grad_norm: torch.Tensor) -> None:
        """Record step ``done`` (1-based count of finished steps)."""
        self.interval_loss = self.interval_loss + loss.double()  # the sum as exact as the old float sum
        self.interval_steps += 1
        self.bar.update(1)
        if log_due(self.config, done):
            mean_loss = float(self.interval_loss) / self.interval_steps
            elapsed = time.perf_counter() - self.tic  # after the sync: the interval's real time
            rate = self.bar.format_dict.get("rate") or 0.0
            self.bar.set_postfix(
                loss=f"{mean_loss:.4f}", lr=f"{lr:.1e}", samples_per_s=f"{rate * self.config.batch_size:.1f}"
            )
            self._write(
                {
                    "step": done,
                    "loss": mean_loss,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "samples_per_s": self.interval_steps * self.config.batch_size / max(elapsed, 1e-9),
                    "elapsed_s": elapsed,
                }
            )
            self.tic, self.interval_loss, self.interval_steps = time.perf_counter(), 0.0, 0

    def _write(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.COLUMNS).writerow(row)
        for key, value in row.items():
            if key != "step":
                self.tb.add_scalar(f"train/{key}", value, row["step"])

    def add_samples(self, step: int, videos: torch.Tensor, *, fps: float = 8.0) -> None:
        """The periodic samples in TensorBoard: the videos side by side as an animated image (what
        ``SummaryWriter.add_video`` writes, encoded here so that it needs no moviepy 1.x), and for clips the
        measured correlation of consecutive sample frames (``samples/frame_correlation_lag1``, mean-centred
        frames) next to the training prior's closed form (``samples/prior_correlation_lag1``, eq. 3 / 4)."""
        if not self.enabled:
            return
        grid = media.tile_videos(list(videos))  # uint8 (F, H, W, 3)
        encoded = media.encode_video(grid, "gif", fps) if grid.shape[0] > 1 else media.encode_png(grid[0])
        image = Summary.Image(
            height=grid.shape[1], width=grid.shape[2], colorspace=3, encoded_image_string=encoded
        )
        self.tb.file_writer.add_summary(
            Summary(value=[Summary.Value(tag="samples/video", image=image)]), step
        )
        if videos.shape[1] > 1:
            centred = videos - videos.mean(dim=(2, 3, 4), keepdim=True)  # content, not shared brightness
            measured = noise.empirical_frame_correlation(centred).diagonal(offset=1).mean()
            prior = noise.frame_correlation(self.config.prior.kind, videos.shape[1], self.config.prior.alpha)
            self.tb.add_scalar("samples/frame_correlation_lag1", float(measured), step)
            self.tb.add_scalar("samples/prior_correlation_lag1", float(prior.diagonal(offset=1).mean()), step)

    def close(self) -> None:
        self.bar.close()
        if self.enabled:
            self.tb.close()


def log_due(config: TrainConfig, done: int) -> bool:
    return done % config.log_every == 0 or done == config.steps


def sample_due(config: TrainConfig, done: int) -> bool:
    return bool(config.sample_every and done % config.sample_every == 0) or done == config.steps


@torch.no_grad()
def save_samples(
    config: TrainConfig, ema: edm.Denoiser, run_dir: Path, step: int, device, num_classes: int, *, cond=None
):
    """Draw EMA samples with the run's noise prior (video) or i.i.d. noise (image), save them as
    ``samples/step-NNNNNNN.{gif,mp4}`` (PNG for images) and return them (N, F, C, H, W) on CPU.

    ``cond``: the conditioning frames of an interpolation / SR run's samples (``batches.sample_condition``).

    The sampler is the config's (``sampler``, ``sample_steps`` and, for "stochastic", ``sample_step`` and the
    ``sample_churn*`` options, with churn noise from the run's prior).
    """
    g = step_generator(config.seed, STREAM_SAMPLES, 0)  # the same starting noise every time: comparable
    c, n = 3, config.num_samples
    frames = 1 if config.phase == "image" else config.num_frames
    x_t = config.prior.sample((n, frames, c, config.resolution, config.resolution), generator=g).to(device)
    labels = (
        torch.arange(n, device=device) % num_classes if config.class_conditional and num_classes else None
    )

    def denoise(x, sigma):
        x_in = x[:, 0] if config.phase == "image" else x
        extra = {} if cond is None else {"cond": cond}
        out = ema(x_in, sigma, **network_conditioning(labels, None, x_in), **extra)
        return out[:, None] if config.phase == "image" else out

    options = config.sampler_spec().options()
    if config.sampler == "stochastic":
        # Churn noise follows the run's prior, from its own seeded stream on the device (as x): the same
        # noise at every sampling round, so rounds stay comparable.
        churn = step_generator(config.seed, STREAM_SAMPLES, 1, device=torch.device(device))
        options["noise_sampler"] = edm.prior_noise_sampler(config.prior, generator=churn)
    with devices.sampling_mode(device):  # TF32 / cuDNN autotuning on CUDA: samples have no bitwise contract
        x0 = edm.sample(denoise, x_t, sampler=config.sampler, num_steps=config.sample_steps, **options)
    x0 = x0.float().cpu()
    media.save_side_by_side(x0, run_dir / "samples" / f"step-{step:07d}")
    return x0
