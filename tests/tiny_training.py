"""Small real stand-ins for the U-Net and the datasets, so the training loop runs in seconds on CPU,
and a script entry that runs the real CLI with them -- optionally killing itself at a chosen point.

The network and data have the contracts of ``pyoco_lab.models`` / ``pyoco_lab.data`` (a conv net
taking ``(x, c_noise, class_labels=..., num_video_frames=...)`` and datasets of dict items). They
replace the real ones where the training package looks them up (``training.networks`` and
``training.batches``), in-process through ``monkeypatch`` or, for subprocesses, in ``__main__``.

Fault injection for subprocess tests (``PYOCO_TEST_FAULT=WHERE:STEP``; the process SIGKILLs
itself, as a power cut or the OOM killer would):

- ``step:S``        inside step S, after the optimiser update, before the EMA/log/checkpoint;
- ``checkpoint:S``  while checkpoint S is written, after its model file, before the rest;
- ``pointer:S``     after checkpoint S's folder is in place, before ``latest.json`` moves;
- ``prune:S``       while pruning after checkpoint S, half-way through deleting an old folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from einops import rearrange
from safetensors.torch import load_file
from torch import nn

from pyoco_lab import cli, edm
from pyoco_lab import training as T
from pyoco_lab.training import batches, checkpoints, loop, networks

FAULTS = ("step", "checkpoint", "pointer", "prune")

RESOLUTION = 8
NUM_FRAMES = 4


class TinyNet(nn.Module):
    """Per-frame conv net + noise embedding; a temporal conv in video mode (video part only)."""

    def __init__(self, video: bool, num_classes: int = 0, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.noise_embed = nn.Linear(1, width)
        self.label_embed = nn.Embedding(num_classes + 1, width) if num_classes else None
        self.temporal = nn.Conv1d(width, width, 3, padding=1) if video else None
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x, c_noise, class_labels=None, num_video_frames=None):
        batch, frames = x.shape[0], (x.shape[1] if x.ndim == 5 else 1)
        h = torch.relu(self.conv(x.reshape(-1, *x.shape[-3:])))
        h = h + self.noise_embed(c_noise.repeat_interleave(frames)[:, None])[:, :, None, None]
        if self.label_embed is not None:  # (B,) per clip, or (B, F) per frame (joint batches)
            per_frame = (
                class_labels.reshape(-1) if class_labels.ndim == 2 else class_labels.repeat_interleave(frames)
            )
            h = h + self.label_embed(per_frame + 1)[:, :, None, None]
        if self.temporal is not None and x.ndim == 5:
            f = num_video_frames or frames
            h = rearrange(h, "(b f) c y x -> b f c y x", b=batch)
            video = rearrange(h[:, :f], "b f c y x -> (b y x) c f")
            video = rearrange(self.temporal(video), "(b y x) c f -> b f c y x", b=batch, y=h.shape[-2])
            h = rearrange(torch.cat([h[:, :f] + video, h[:, f:]], dim=1), "b f c y x -> (b f) c y x")
        out = self.out(h)
        return out.reshape(x.shape)


class TinyData(torch.utils.data.Dataset):
    """Smooth random clips/frames in [-1, 1], a fixed function of the index."""

    num_classes = 3

    def __init__(self, key: str, size: int = 24, num_frames: int = NUM_FRAMES):
        self.key, self.size, self.num_frames = key, size, num_frames

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(index)
        base = torch.rand(3, RESOLUTION, RESOLUTION, generator=g) * 2 - 1
        if self.key == "image":
            return {"image": base, "label": index % 3, "video_id": index}
        drift = torch.linspace(0, 0.3, self.num_frames)[:, None, None, None]
        return {"video": (base + drift).clamp(-1, 1), "label": index % 3, "video_id": index}


def install_test_pieces(monkeypatch=None) -> None:
    def build_network(config, num_classes=0):
        if config.resolution != RESOLUTION:
            raise ValueError(f"test network is {RESOLUTION}px")
        width = {"tiny": 8, "tiny-wide": 12}[config.model]
        return edm.Denoiser(TinyNet(config.phase == "video", num_classes, width))

    def build_datasets(config, split="train", build_missing=False, progress=True):  # the real signature
        if config.phase == "image":
            return TinyData("image"), None
        return TinyData("video", num_frames=config.num_frames), (
            TinyData("image") if config.joint_images else None
        )

    def inflate_denoiser(image_denoiser, video_config, num_classes):
        video = build_network(video_config, num_classes)
        ours = video.state_dict()
        if any(k not in ours or ours[k].shape != v.shape for k, v in image_denoiser.state_dict().items()):
            raise ValueError("the --init image model does not fit the video config")
        video.load_state_dict(image_denoiser.state_dict(), strict=False)
        return video

    # The loop and load_denoiser look these up in their modules, so replacing them there is enough.
    for module, name, value in (
        (networks, "check_architecture_fits", lambda *args: None),  # the test inflate checks it
        (networks, "build_network", build_network),
        (batches, "build_datasets", build_datasets),
        (networks, "inflate_denoiser", inflate_denoiser),
    ):
        if monkeypatch is not None:
            monkeypatch.setattr(module, name, value)
        else:
            setattr(module, name, value)


def small_config(phase="image", **overrides) -> T.TrainConfig:
    values = dict(
        resolution=RESOLUTION,
        num_frames=NUM_FRAMES,
        batch_size=4,
        steps=6,
        log_every=1,
        checkpoint_every=2,
        num_samples=1,
        sample_steps=2,
        warmup_steps=2,
        joint_images=0,
    )
    if phase == "video":
        values.update(joint_images=1, noise="progressive", alpha=2.0)
    values.update(overrides)
    return T.preset_config("quick", phase, **values)


CLI_ARGS = [
    "--resolution",
    str(RESOLUTION),
    "--num-frames",
    str(NUM_FRAMES),
    "--batch-size",
    "4",
    "--num-samples",
    "1",
    "--sample-steps",
    "2",
    "--warmup-steps",
    "2",
    "--log-every",
    "1",
    "--no-progress",
]


def run_cli(*args: str, env=None, fault: str | None = None, **popen) -> subprocess.Popen:
    """Start this file as a script: it installs the test pieces and calls the real CLI.

    ``fault`` ("WHERE:STEP", see :data:`FAULTS`) makes the process SIGKILL itself at that point.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if fault is not None:
        env["PYOCO_TEST_FAULT"] = fault
    return subprocess.Popen([sys.executable, __file__, *args], env=env, **popen)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(T.latest_checkpoint(run_dir) / T.MODEL_FILE))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_fault(spec: str) -> None:
    """Arrange for this process to SIGKILL itself at ``WHERE:STEP`` (see the module docstring)."""
    where, step = spec.split(":")
    step = int(step)
    if where not in FAULTS:
        raise ValueError(f"unknown fault {where!r}; choose one of {FAULTS}")
    if where == "step":
        update_ema = loop.update_ema

        def dying_update_ema(ema, model, s, decay):
            if s + 1 == step:
                _die()
            update_ema(ema, model, s, decay)

        loop.update_ema = dying_update_ema
    elif where == "checkpoint":
        save_file = checkpoints.save_file

        def dying_save_file(tensors, filename, *args, **kwargs):
            save_file(tensors, filename, *args, **kwargs)
            if f"step-{step:07d}" in filename:
                _die()

        checkpoints.save_file = dying_save_file
    elif where == "pointer":
        write = checkpoints.atomic_write_text

        def dying_write(path, text, **kwargs):
            if Path(path).name == checkpoints.LATEST_FILE and f"step-{step:07d}" in text:
                _die()
            return write(path, text, **kwargs)

        checkpoints.atomic_write_text = dying_write
    else:
        prune = checkpoints.prune_checkpoints

        def dying_prune(run_dir, keep):
            if checkpoints.checkpoint_step(checkpoints.checkpoint_folders(run_dir)[0]) == step:
                old = checkpoints.checkpoint_folders(run_dir)[keep:]
                if old:
                    (old[0] / checkpoints.MODEL_FILE).unlink()  # rmtree got this far
                    _die()
            prune(run_dir, keep)

        checkpoints.prune_checkpoints = dying_prune


if __name__ == "__main__":  # subprocess entry: the CLI with the test network and data
    install_test_pieces()
    if os.environ.get("PYOCO_TEST_FAULT"):
        install_fault(os.environ["PYOCO_TEST_FAULT"])
    torch.set_num_threads(1)
    sys.exit(cli.main(sys.argv[1:]))
