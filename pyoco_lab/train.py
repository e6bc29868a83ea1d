"""Training: image pre-training on frames, then video finetuning with a noise prior (Section 5, A.3).

One loop serves both phases:

- ``phase="image"`` trains the image model on single frames with i.i.d. noise (A.3: Adam, lr 2e-4).
- ``phase="video"`` trains the video model on clips whose noise follows the run's prior (i.i.d.,
  mixed eq. 3 or progressive eq. 4 at some alpha), starting from an inflated image checkpoint
  (``init``) or from scratch (the baseline of Table 5 / Fig. 7). Optionally each clip carries
  ``joint_images`` independent frames appended along the frame axis (A.1 (7), after Ho et al.):
  their noise is i.i.d. and the network applies temporal layers to the video part only.

Reproducibility is by construction rather than by saved state: everything random in step ``s``
(data order, sigma, noise, label dropout, dropout inside the network) is drawn from generators
seeded by ``(seed, s)``. A run killed after its checkpoint at step ``s`` and resumed therefore
replays exactly the same steps, and on CPU ends bitwise identical to an uninterrupted run. The
RNG states are saved in the checkpoint anyway, for code that draws from the global generators.

Distribution is plain PyTorch DDP under ``torchrun`` (ranks read from ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``); the global batch is fixed and every rank takes its own slice of it, so the same
command gives the same optimisation single-process or on several GPUs.

Run folder::

    RUN/config.json                    the TrainConfig (+ init path), checked on --resume
    RUN/log.csv, RUN/tb/               per-step metrics (CSV and TensorBoard)
    RUN/samples/step-XXXXXXX.{gif,mp4,png}   EMA samples drawn with the run's noise prior
    RUN/checkpoints/latest.json        pointer to the newest complete checkpoint (atomic)
    RUN/checkpoints/step-XXXXXXX/      model.safetensors, ema.safetensors, state.pt
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from einops import rearrange
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from pyoco_lab import edm, noise

__all__ = [
    "TrainConfig",
    "Preset",
    "PRESETS",
    "OPTIMIZER_PRESETS",
    "TrainingDiverged",
    "preset_config",
    "validate_config",
    "train",
    "load_denoiser",
    "load_config",
    "latest_checkpoint",
]

CONFIG_FILE = "config.json"
LATEST_FILE = "latest.json"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"

# ----------------------------------------------------------------------------------------------
# Configuration: one flat dataclass; every field is a command-line option of `pyoco-lab train`.


def _opt(default, help: str, choices: tuple | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    # what is trained
    phase: str = _opt(
        "image",
        "image: pre-train on frames; video: finetune (with --init) or from scratch",
        ("image", "video"),
    )
    model: str = _opt("tiny", "architecture: a name in pyoco_lab.models.CONFIGS (ucf-small = Table G, ...)")
    # data
    dataset: str = _opt(
        "embedded",
        "embedded: the package-shipped dataset; ucf101: real UCF-101 clips",
        ("embedded", "ucf101"),
    )
    data_root: str | None = _opt(None, "data folder (default: repo data/ or $PYOCO_DATA)")
    resolution: int = _opt(32, "frame height and width in pixels")
    num_frames: int = _opt(16, "frames per training clip (video phase; the paper uses 16)")
    joint_images: int = _opt(0, "independent frames appended after each clip along the frame axis (A.1 (7))")
    # the noise prior (video phase; the image phase is always i.i.d.)
    noise: str = _opt("iid", "noise prior for video training and sampling", ("iid", "mixed", "progressive"))
    alpha: float = _opt(0.0, "prior strength alpha >= 0 (inf allowed); paper's best: mixed 1, progressive 2")
    # conditioning
    class_conditional: bool = _opt(
        False, "condition on class labels (the paper's UCF runs are unconditional)"
    )
    label_dropout: float = _opt(0.1, "probability of dropping the class label (for classifier-free guidance)")
    text_encoders: str = _opt(
        "",
        "text conditioning (A.1 (8)): comma-separated encoders, 'minilm' (offline, the text extra), "
        "'t5:FOLDER', 'clip:FOLDER'; each clip's caption is one of the A.2 templates of its class name",
    )
    text_dropout: str = _opt(
        "0.25,0.2", "per-encoder probability of dropping its text embedding (Table F: T5 0.25, CLIP 0.2)"
    )
    # optimisation (A.3 for UCF-101, Table F for the large-scale setting)
    batch_size: int = _opt(16, "global batch size (summed over all processes)")
    steps: int = _opt(1000, "total optimiser steps")
    optimizer: str = _opt("adam", "optimiser", ("adam", "adamw"))
    lr: float = _opt(2e-4, "base learning rate (A.3: 2e-4 image, 1e-4 video)")
    warmup_steps: int = _opt(5000, "linear learning-rate warm-up steps (A.3: 5000)")
    weight_decay: float = _opt(0.0, "weight decay (Table F: 0.01 with AdamW)")
    beta1: float = _opt(0.9, "Adam beta1")
    beta2: float = _opt(0.999, "Adam beta2")
    ema_decay: float = _opt(0.9999, "EMA decay (Table F: 0.9999); ramped up as min(decay, (1+t)/(10+t))")
    grad_clip: float = _opt(1.0, "clip the global gradient norm to this value (0: off)")
    p_mean: float = _opt(edm.P_MEAN, "mean of ln(sigma) during training (EDM)")
    p_std: float = _opt(edm.P_STD, "std of ln(sigma) during training (EDM)")
    # hardware
    device: str = _opt("auto", "auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda, cuda:N")
    precision: str = _opt("fp32", "bf16 autocasts the network on GPU (no-op on CPU)", ("fp32", "bf16"))
    grad_checkpointing: bool = _opt(False, "recompute activations in the backward pass to save GPU memory")
    deterministic: bool = _opt(True, "use deterministic algorithms (bitwise reproducible on CPU)")
    num_workers: int = _opt(0, "data-loader worker processes")
    seed: int = _opt(0, "seed of every random draw (data order, sigma, noise, dropout)")
    # bookkeeping
    log_every: int = _opt(10, "write CSV/TensorBoard metrics every N steps")
    checkpoint_every: int = _opt(500, "write a checkpoint every N steps (and always at the end)")
    keep_checkpoints: int = _opt(2, "how many recent checkpoints to keep on disk")
    sample_every: int = _opt(0, "save EMA samples every N steps (0: only at the end)")
    num_samples: int = _opt(4, "samples drawn each time")
    sampler: str = _opt("heun", "sampler for the periodic samples", tuple(edm.SAMPLERS))
    sample_steps: int = _opt(18, "sampler steps for the periodic samples")

    @property
    def prior(self) -> noise.NoisePrior:
        """The run's noise prior; images are always trained with i.i.d. noise."""
        return (
            noise.NoisePrior("iid", 0.0)
            if self.phase == "image"
            else noise.NoisePrior(self.noise, self.alpha)
        )


# Fields that may change when a run is resumed or extended: they do not alter the optimisation.
RESUMABLE_CHANGES = frozenset(
    {
        "steps",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "sample_every",
        "num_samples",
        "sampler",
        "sample_steps",
        "num_workers",
        "device",
    }
)

# Optimiser presets, as the paper states them. UCF-101 (A.3): Adam, lr 2e-4 for the image phase,
# 1e-4 for the video phase, 5,000 linear warm-up steps for both. EMA is not stated for UCF; we
# use Table F's 0.9999. Large-scale text-to-video (Table F): AdamW, lr 1e-4, weight decay 0.01,
# betas (0.9, 0.999), EMA 0.9999, gradient checkpointing enabled.
OPTIMIZER_PRESETS: dict[str, dict[str, Any]] = {
    "ucf-image": dict(optimizer="adam", lr=2e-4, warmup_steps=5000, weight_decay=0.0, ema_decay=0.9999),
    "ucf-video": dict(optimizer="adam", lr=1e-4, warmup_steps=5000, weight_decay=0.0, ema_decay=0.9999),
    "large-scale": dict(
        optimizer="adamw",
        lr=1e-4,
        weight_decay=0.01,
        beta1=0.9,
        beta2=0.999,
        ema_decay=0.9999,
        grad_checkpointing=True,
    ),
}


@dataclass(frozen=True)
class Preset:
    """A named starting point: shared values plus per-phase values (fields of TrainConfig)."""

    description: str
    common: dict[str, Any]
    image: dict[str, Any]
    video: dict[str, Any]

    def config(self, phase: str, **overrides) -> TrainConfig:
        if phase not in ("image", "video"):
            raise ValueError(f"unknown phase {phase!r}; choose 'image' or 'video'")
        return validate_config(
            TrainConfig(phase=phase, **{**self.common, **getattr(self, phase), **overrides})
        )


_UCF_COMMON = dict(
    dataset="ucf101",
    resolution=64,
    num_frames=16,
    batch_size=64,
    precision="bf16",
    deterministic=False,
    num_workers=8,
    log_every=50,
    checkpoint_every=5000,
    sample_every=10000,
    num_samples=8,
    sampler="deis",
    sample_steps=25,
)

PRESETS: dict[str, Preset] = {
    "quick": Preset(
        # Minutes per phase on 2 CPU cores: tiny model, 32x32, 8 frames (the paper uses 16), short
        # warm-up and a fast-ramping EMA so that a few hundred steps already give a usable model.
        "CPU, a few minutes per phase: tiny model, 32x32, 8-frame clips of the embedded data",
        common=dict(
            model="tiny",
            dataset="embedded",
            resolution=32,
            num_frames=8,
            batch_size=8,
            warmup_steps=50,
            ema_decay=0.999,
            log_every=10,
            checkpoint_every=100,
            num_samples=2,
            sample_steps=12,
        ),
        image=dict(steps=300, lr=1e-3),
        # A video step costs ~(frames + images) image steps, hence the smaller batch.
        video=dict(steps=150, batch_size=4, lr=5e-4, joint_images=1, noise="progressive", alpha=2.0),
    ),
    "standard": Preset(
        "one GPU, about an hour per phase: 64x64, 16-frame clips of the embedded data, A.3 optimiser",
        common=dict(
            model="lab-l",
            dataset="embedded",
            resolution=64,
            num_frames=16,
            batch_size=32,
            precision="bf16",
            deterministic=False,
            num_workers=4,
            log_every=50,
            checkpoint_every=2000,
            sample_every=5000,
            num_samples=4,
        ),
        image={**OPTIMIZER_PRESETS["ucf-image"], "steps": 20000, "warmup_steps": 1000},
        video={
            **OPTIMIZER_PRESETS["ucf-video"],
            "steps": 15000,
            "warmup_steps": 1000,
            "joint_images": 4,
            "noise": "progressive",
            "alpha": 2.0,
        },
    ),
    # Tables G/H/I on real UCF-101 with the A.3 optimiser. The paper gives neither batch size nor
    # iteration counts for UCF-101: 64 and 200k/100k steps are our choices.
    **{
        name: Preset(
            f"UCF-101 16x64x64, {table} architecture, A.3 optimiser (several GPUs, days)",
            common={**_UCF_COMMON, "model": name},
            image={**OPTIMIZER_PRESETS["ucf-image"], "steps": 200000},
            video={
                **OPTIMIZER_PRESETS["ucf-video"],
                "steps": 100000,
                "joint_images": 4,
                "noise": "progressive",
                "alpha": 2.0,
            },
        )
        for name, table in (
            ("ucf-small", "Table G (69M)"),
            ("ucf-medium", "Table H (112M)"),
            ("ucf-large", "Table I (253M)"),
        )
    },
}


def preset_config(
    preset: str, phase: str, *, optimizer_preset: str | None = None, **overrides
) -> TrainConfig:
    """``PRESETS[preset]`` for ``phase``, then an optional optimiser preset, then ``overrides``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if optimizer_preset is not None:
        if optimizer_preset not in OPTIMIZER_PRESETS:
            raise ValueError(
                f"unknown optimizer preset {optimizer_preset!r}; choose one of {', '.join(OPTIMIZER_PRESETS)}"
            )
        overrides = {**OPTIMIZER_PRESETS[optimizer_preset], **overrides}
    return PRESETS[preset].config(phase, **overrides)


def validate_config(config: TrainConfig) -> TrainConfig:
    """Reject a bad config before any work starts, saying what to change."""
    for f in fields(config):
        choices = f.metadata.get("choices")
        value = getattr(config, f.name)
        if choices and value not in choices:
            raise ValueError(f"{f.name}={value!r} is not valid; choose one of {', '.join(map(str, choices))}")
    if math.isnan(config.alpha) or config.alpha < 0:
        raise ValueError(f"alpha must be >= 0 (or inf), got {config.alpha}; pass e.g. --alpha 2")
    positive = (
        "resolution",
        "num_frames",
        "batch_size",
        "steps",
        "log_every",
        "checkpoint_every",
        "num_samples",
        "sample_steps",
        "keep_checkpoints",
    )
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ("joint_images", "warmup_steps", "num_workers", "sample_every"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
    if not 0.0 <= config.label_dropout <= 1.0:
        raise ValueError(f"label_dropout must be in [0, 1], got {config.label_dropout}")
    text_specs(config)  # raises on a malformed --text-encoders / --text-dropout
    if config.phase == "image" and (config.noise != "iid" or config.joint_images):
        raise ValueError(
            "the image phase trains single frames with i.i.d. noise; drop --noise/--alpha/--joint-images "
            "or pass --phase video"
        )
    noise.validate_kind(config.noise)
    return config


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}; this file was written by another version")
    return validate_config(TrainConfig(**values))


def default_runs_root() -> Path:
    """Default home of runs: ``$PYOCO_RUNS``, else ``runs/`` in the repository (where the explorer looks)."""
    if os.environ.get("PYOCO_RUNS"):
        return Path(os.environ["PYOCO_RUNS"]).expanduser()
    return Path(__file__).resolve().parents[1] / "runs"


def default_run_name(preset: str, config: TrainConfig, *, init: bool) -> str:
    """``quick-image``, ``quick-video-progressive-a2`` (finetuned) or ``quick-video-iid-scratch``."""
    if config.phase == "image":
        return f"{preset}-image"
    prior = "iid" if config.noise == "iid" else f"{config.noise}-a{config.alpha:g}"
    return f"{preset}-video-{prior}" + ("" if init else "-scratch")


def load_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig stored in ``RUN/config.json``."""
    return config_from_dict(_read_run_meta(Path(run_dir))["config"])


# ----------------------------------------------------------------------------------------------
# Small helpers: atomic files, distributed environment.


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_run_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass a run folder written by `pyoco-lab train --out`")
    return json.loads(path.read_text())


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


def _resolve_device(config: TrainConfig, env: DistEnv) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{env.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} requested but CUDA is not available; pass --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{env.local_rank}")
    return device


def _init_distributed(env: DistEnv, device: torch.device) -> bool:
    """Join the process group when launched by torchrun with more than one process."""
    if env.world_size == 1:
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    return True


def _barrier(distributed: bool) -> None:
    if distributed:
        dist.barrier()


# ----------------------------------------------------------------------------------------------
# Reproducible randomness: every draw of step s comes from generators seeded by (seed, stream, s).


def _step_seed(seed: int, stream: int, step: int) -> int:
    # A fixed integer mix (not Python's salted hash) so seeds agree across processes and runs.
    return (seed * 1_000_003 + stream * 7_919 + step * 104_729) % (2**63 - 1)


def _generator(seed: int, stream: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(_step_seed(seed, stream, step))
    return generator


(
    STREAM_DATA,
    STREAM_IMAGES,
    STREAM_SIGMA,
    STREAM_NOISE,
    STREAM_LABELS,
    STREAM_DROPOUT,
    STREAM_SAMPLES,
    STREAM_TEXT,
) = range(8)


def data_indices(dataset_size: int, seed: int, stream: int, start: int, count: int) -> list[int]:
    """Indices of positions ``start .. start+count-1`` of an endless shuffled stream over the data.

    Epoch ``e`` is a permutation drawn from a generator seeded by (seed, stream, e), so the data
    order is a pure function of the position -- that is the data loader's resumable state.
    """
    indices, position = [], start
    while len(indices) < count:
        epoch, offset = divmod(position, dataset_size)
        order = _epoch_order(dataset_size, seed, stream, epoch)
        take = min(count - len(indices), dataset_size - offset)
        indices.extend(order[offset : offset + take].tolist())
        position += take
    return indices


@functools.lru_cache(maxsize=4)
def _epoch_order(dataset_size: int, seed: int, stream: int, epoch: int) -> torch.Tensor:
    # Cached: a large frame dataset would otherwise redraw a million-entry permutation every step.
    return torch.randperm(dataset_size, generator=_generator(seed, stream, epoch))


class _StepBatches(torch.utils.data.Sampler):
    """Yields this rank's slice of the global batch for steps ``start_step .. steps-1``.

    Each entry is (dataset index, per-item seed): the item seed makes random crops or clip
    offsets inside the dataset a function of the position too, whichever worker loads it.
    """

    def __init__(self, dataset_size, global_batch, per_item, seed, stream, start_step, steps, env: DistEnv):
        self.args = (dataset_size, global_batch, per_item, seed, stream, start_step, steps)
        self.env = env

    def __len__(self) -> int:
        return self.args[6] - self.args[5]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        size, global_batch, per_item, seed, stream, start_step, steps = self.args
        local = global_batch // self.env.world_size * per_item
        for step in range(start_step, steps):
            start = (step * global_batch + self.env.rank * (global_batch // self.env.world_size)) * per_item
            indices = data_indices(size, seed, stream, start, local)
            yield [(index, _step_seed(seed, stream, start + i)) for i, index in enumerate(indices)]


class _SeededItems(torch.utils.data.Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        random.seed(seed)
        np.random.seed(seed % 2**32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------
# Data and model: thin adapters over pyoco_lab.data and pyoco_lab.models.


def build_datasets(config: TrainConfig, split: str = "train", *, build_missing: bool = False):
    """(main dataset, image dataset for joint training or None) for the config's phase.

    ``build_missing`` builds the embedded dataset when absent (it is made from package-shipped
    imagery, no download); otherwise missing data raises FileNotFoundError naming the command
    that prepares it.
    """
    from pyoco_lab import data

    root, size, f = config.data_root, config.resolution, config.num_frames
    if config.dataset == "embedded":
        opts = {"build_if_missing": build_missing}
        frames = functools.partial(data.EmbeddedFramesDataset, root, size, split, **opts)
        clips = functools.partial(data.EmbeddedVideoDataset, root, size, split, f, **opts)
    else:
        frames = functools.partial(data.UCF101Frames, root=root, resolution=size, split=split)
        clips = functools.partial(data.UCF101Clips, root=root, resolution=size, split=split, num_frames=f)
    if config.phase == "image":
        return frames(), None
    return clips(), (frames() if config.joint_images else None)


def num_classes_of(dataset) -> int:
    return int(getattr(dataset, "num_classes", 0))


def text_specs(config: TrainConfig) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The text encoders of ``--text-encoders`` and their dropout probabilities (one each)."""
    specs = tuple(spec.strip() for spec in config.text_encoders.split(",") if spec.strip())
    if not specs:
        return (), ()
    try:
        probs = tuple(float(p) for p in config.text_dropout.split(","))
    except ValueError:
        raise ValueError(
            f"--text-dropout must be comma-separated numbers, got {config.text_dropout!r}"
        ) from None
    if len(probs) < len(specs) or not all(0.0 <= p <= 1.0 for p in probs):
        raise ValueError(
            f"--text-dropout needs one probability in [0, 1] per text encoder ({len(specs)}), "
            f"got {config.text_dropout!r}"
        )
    return specs, probs[: len(specs)]


class CaptionBank:
    """Pre-encoded A.2 captions of every class: ten templated captions per class name, encoded once.

    A training step picks one caption per clip (from a generator seeded by the step, so resume
    and DDP stay exact) and drops each encoder's embedding with its own probability (Table F).
    """

    def __init__(self, config: TrainConfig, class_names, device):
        from pyoco_lab.data.prompts import captions
        from pyoco_lab.models import load_text_encoder

        self.specs, self.drop_probs = text_specs(config)
        if not class_names:
            raise ValueError(
                "text conditioning needs a dataset with class names to caption; drop --text-encoders"
            )
        prompts = [caption for name in class_names for caption in captions(name)]
        self.per_class = len(prompts) // len(class_names)
        self.tokens, self.masks = [], []
        for spec in self.specs:
            tokens, mask = load_text_encoder(spec, device="cpu").encode(prompts)
            self.tokens.append(tokens.to(device))
            self.masks.append(mask.to(device))

    def conditioning(self, labels: torch.Tensor, config: TrainConfig, step: int, lo: int, hi: int) -> dict:
        """``text_embeddings`` / ``text_mask`` for the rank's slice [lo, hi) of the global batch."""
        from pyoco_lab.models import drop_text

        g = _generator(config.seed, STREAM_TEXT, step)
        template = torch.randint(self.per_class, (config.batch_size,), generator=g)[lo:hi]
        index = labels.cpu() * self.per_class + template
        masks = drop_text([m[index] for m in self.masks], self.drop_probs, generator=g)
        return {"text_embeddings": [t[index] for t in self.tokens], "text_mask": masks}


def build_network(config: TrainConfig, *, num_classes: int = 0) -> edm.Denoiser:
    """The EDM-preconditioned U-Net the config names (image model in the image phase)."""
    from pyoco_lab import models

    return models.build_denoiser(_unet_config(config, num_classes))


def _unet_config(config: TrainConfig, num_classes: int):
    from pyoco_lab import models

    if config.model not in models.CONFIGS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(models.CONFIGS)}")
    unet = models.CONFIGS[config.model]
    wanted = {
        "resolution": config.resolution,
        "num_classes": num_classes if config.class_conditional else 0,
        "video": config.phase == "video",
        "grad_checkpointing": config.grad_checkpointing,
    }
    specs, drop_probs = text_specs(config)
    if specs:  # cross-attention to text in the spatial attention blocks only (A.1 (5))
        wanted["text_dims"] = tuple(models.text_dim(spec) for spec in specs)
        wanted["text_drop_probs"] = drop_probs
        wanted["cross_attention_resolutions"] = unet.cross_attention_resolutions or unet.attention_resolutions
    names = {f.name for f in fields(unet)}
    return replace(unet, **{k: v for k, v in wanted.items() if k in names})


def inflate_denoiser(
    image_denoiser: edm.Denoiser, video_config: TrainConfig, num_classes: int
) -> edm.Denoiser:
    """Video denoiser initialised from an image denoiser (Section 4: 2D -> 3D, new temporal layers)."""
    from pyoco_lab import models

    video = models.inflate(image_denoiser.net)
    denoiser = edm.Denoiser(video, sigma_data=image_denoiser.sigma_data)
    expected = build_network(video_config, num_classes=num_classes)
    ours, theirs = denoiser.state_dict(), expected.state_dict()
    if ours.keys() != theirs.keys() or any(ours[k].shape != theirs[k].shape for k in ours):
        raise ValueError(
            "the --init image model does not fit the video config "
            f"(model={video_config.model!r}, resolution={video_config.resolution}); "
            "pass the same --model/--resolution/--class-conditional as the image run"
        )
    return denoiser


def _check_init_fits(image_config: TrainConfig, config: TrainConfig, init) -> None:
    """Fail before any work when the --init run cannot be inflated into this video config."""
    if image_config.phase != "image":
        raise ValueError(f"--init {init} is a {image_config.phase} run; pass an image-phase run")
    for name in ("model", "resolution"):
        ours, theirs = getattr(config, name), getattr(image_config, name)
        if ours != theirs:
            raise ValueError(
                f"the --init image run does not fit the video config ({name} {theirs!r} there, {ours!r} "
                f"here); pass --{name} {theirs} (or pre-train an image model with --{name} {ours})"
            )


def _check_architecture_fits(image_run: Path, config: TrainConfig, num_classes: int) -> None:
    """Compare the image and video architectures on the meta device (cheap, before any weights)."""
    from pyoco_lab import models

    meta = _read_run_meta(image_run)
    image = _unet_config(config_from_dict(meta["config"]), int(meta.get("num_classes", 0)))
    try:
        models.image_state_dict_compatible(image, _unet_config(config, num_classes))
    except ValueError as error:
        raise ValueError(f"the --init image run does not fit the video config: {error}") from None


def _conditioning(labels, num_video_frames, x) -> dict[str, Any]:
    """Keyword arguments of the network: class labels and, for joint batches, the video length."""
    cond = {}
    if labels is not None:
        cond["class_labels"] = labels
    if num_video_frames is not None and x.ndim == 5 and num_video_frames < x.shape[1]:
        cond["num_video_frames"] = num_video_frames
    return cond


# ----------------------------------------------------------------------------------------------
# Checkpoints: safetensors weights + a weights_only torch file for the training state.


def _checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:07d}"


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    pointer = Path(run_dir) / "checkpoints" / LATEST_FILE
    if not pointer.is_file():
        return None
    path = Path(run_dir) / "checkpoints" / json.loads(pointer.read_text())["path"]
    return path if path.is_dir() else None


def _state_dict_for_file(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: Path, step: int, *, model, ema, optimizer, complete: bool) -> Path:
    """Write a checkpoint folder atomically, then move the `latest` pointer to it.

    Files go into a hidden temporary folder that is renamed into place only when complete, and
    the pointer is replaced atomically afterwards: a kill at any moment leaves the previous
    checkpoint (and pointer) intact.
    """
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = _checkpoint_dir(run_dir, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_state_dict_for_file(model), str(tmp / MODEL_FILE))
    save_file(_state_dict_for_file(ema), str(tmp / EMA_FILE))
    state = {"step": step, "optimizer": optimizer.state_dict(), "rng": _rng_state(), "data_position": step}
    torch.save(state, tmp / STATE_FILE)
    for name in (MODEL_FILE, EMA_FILE, STATE_FILE):
        with open(tmp / name, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():  # left over from a killed run that never pointed at it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _atomic_write_text(
        root / LATEST_FILE, json.dumps({"step": step, "path": final.name, "complete": complete})
    )
    return final


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    root = run_dir / "checkpoints"
    folders = sorted(p for p in root.glob("step-*") if p.is_dir())
    latest = latest_checkpoint(run_dir)
    for old in folders[:-keep]:
        if old != latest:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint folder, run folder) from a run folder, a checkpoint folder or a weights file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; pass a run folder or a checkpoint from `pyoco-lab train`"
        )
    if path.is_file():
        path = path.parent
    if (path / CONFIG_FILE).is_file():
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            raise FileNotFoundError(f"run {path} has no checkpoint yet; train it first (or --resume it)")
        return checkpoint, path
    if (path / MODEL_FILE).is_file() and (path.parent.parent / CONFIG_FILE).is_file():
        return path, path.parent.parent
    raise FileNotFoundError(f"{path} is neither a run folder nor a checkpoint folder of `pyoco-lab train`")


def load_denoiser(
    run_dir_or_checkpoint: str | os.PathLike, *, ema: bool = True, device: torch.device | str = "cpu"
) -> tuple[edm.Denoiser, TrainConfig]:
    """(denoiser in eval mode, its TrainConfig) from a run folder (newest checkpoint) or a checkpoint."""
    checkpoint, run_dir = _resolve_checkpoint(run_dir_or_checkpoint)
    meta = _read_run_meta(run_dir)
    config = config_from_dict(meta["config"])
    denoiser = build_network(config, num_classes=int(meta.get("num_classes", 0)))
    weights = load_file(str(checkpoint / (EMA_FILE if ema else MODEL_FILE)))
    denoiser.load_state_dict(weights)
    return denoiser.to(device).eval().requires_grad_(False), config


def _weights_shapes(checkpoint: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(checkpoint / EMA_FILE), framework="pt") as handle:
        return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}


# ----------------------------------------------------------------------------------------------
# The loop.


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped and its last good checkpoint is kept."""


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """ema <- d ema + (1 - d) model with d = min(decay, (1 + t) / (10 + t)).

    The ramp keeps short runs from averaging in the random initialisation (a fixed 0.9999
    needs ~10^4 steps before the average forgets it).
    """
    d = min(decay, (1.0 + step) / (10.0 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - d)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to the base rate over ``warmup_steps`` (A.3), constant afterwards."""
    if config.warmup_steps == 0:
        return config.lr
    return config.lr * min(1.0, (step + 1) / config.warmup_steps)


def _build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # foreach=False: the per-parameter loop has one fixed summation order on every device.
    return cls(
        model.parameters(),
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        weight_decay=config.weight_decay,
        foreach=False,
    )


def _collate(items: list[dict], key: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([torch.as_tensor(item[key], dtype=torch.float32) for item in items])
    labels = torch.tensor([int(item.get("label", 0)) for item in items], dtype=torch.long)
    return x, labels


def _make_loader(dataset, key, config, env, stream, per_item, start_step):
    sampler = _StepBatches(
        len(dataset), config.batch_size, per_item, config.seed, stream, start_step, config.steps, env
    )
    return torch.utils.data.DataLoader(
        _SeededItems(dataset),
        batch_sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=functools.partial(_collate, key=key),
        persistent_workers=False,
    )


def _training_batch(config, video_batch, image_batch, device):
    """(x (B, F[+N], C, H, W) or (B, C, H, W), labels) for one step on this rank."""
    x, labels = video_batch
    if image_batch is not None:
        images, _ = image_batch  # (B * N, C, H, W) -> appended along the frame axis
        images = rearrange(images, "(b n) c h w -> b n c h w", n=config.joint_images)
        x = torch.cat([x, images], dim=1)
    return x.to(device), labels.to(device)


def _draw_noise(config: TrainConfig, step: int, global_shape: tuple[int, ...]) -> torch.Tensor:
    """Noise for the whole global batch of ``step`` (every rank draws it and takes its slice)."""
    g = _generator(config.seed, STREAM_NOISE, step)
    if len(global_shape) == 4:  # images
        return torch.randn(global_shape, generator=g)
    return noise.sample_joint_noise(
        config.noise, global_shape, config.alpha, num_video_frames=config.num_frames, generator=g
    )


def _write_samples(path_stem: Path, frames: torch.Tensor) -> list[Path]:
    """Save samples (N, F, C, H, W) in [-1, 1] side by side as GIF + MP4 (PNG for F = 1)."""
    import imageio.v3 as iio

    from pyoco_lab.viz.video import save_video, tile_videos

    grid = tile_videos(list(frames))  # uint8 (F, H, N*W + padding, 3): one video, looping in sync
    written = []
    if grid.shape[0] == 1:
        final = path_stem.with_suffix(".png")
        tmp = final.with_name(f".tmp-{os.getpid()}-{final.name}")
        iio.imwrite(tmp, grid[0], extension=".png")
        os.replace(tmp, final)
        return [final]
    video = rearrange(torch.from_numpy(grid), "f h w c -> f c h w")
    for suffix in (".gif", ".mp4"):
        try:
            written.append(save_video(video, path_stem.with_suffix(suffix)))
        except Exception as error:  # an optional format (e.g. no H.264 encoder) must not kill training
            print(f"warning: could not write {path_stem.name}{suffix}: {error}")
    return written


@torch.no_grad()
def save_samples(config: TrainConfig, ema: edm.Denoiser, run_dir: Path, step: int, device, num_classes: int):
    """Draw EMA samples with the run's noise prior (video) or i.i.d. noise (image) and save them."""
    g = _generator(config.seed, STREAM_SAMPLES, 0)  # the same starting noise every time: comparable
    c, n = 3, config.num_samples
    frames = 1 if config.phase == "image" else config.num_frames
    x_t = config.prior.sample((n, frames, c, config.resolution, config.resolution), generator=g).to(device)
    labels = (
        torch.arange(n, device=device) % num_classes if config.class_conditional and num_classes else None
    )

    def denoise(x, sigma):
        x_in = x[:, 0] if config.phase == "image" else x
        out = ema(x_in, sigma, **_conditioning(labels, None, x_in))
        return out[:, None] if config.phase == "image" else out

    x0 = edm.sample(denoise, x_t, sampler=config.sampler, num_steps=config.sample_steps)
    (run_dir / "samples").mkdir(exist_ok=True)
    return _write_samples(run_dir / "samples" / f"step-{step:07d}", x0.float().cpu())


class _Logger:
    """CSV + TensorBoard on rank 0. On resume, rows after the resumed step are dropped."""

    COLUMNS = ("step", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s")

    def __init__(self, run_dir: Path, start_step: int, enabled: bool):
        self.enabled = enabled
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
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)

    def log(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.COLUMNS).writerow(row)
        for key, value in row.items():
            if key != "step":
                self.tb.add_scalar(f"train/{key}", value, row["step"])

    def close(self) -> None:
        if self.enabled:
            self.tb.close()


def _prepare_run(config, run_dir: Path, init, resume: bool, env: DistEnv) -> tuple[str, Path | None]:
    """Decide between 'done', 'resume' and 'fresh', refusing to mix different configs in one folder."""
    checkpoint = latest_checkpoint(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        if checkpoint is not None:
            raise ValueError(
                f"{run_dir} holds checkpoints but no {CONFIG_FILE}; choose an empty --out folder"
            )
        return "fresh", None
    meta = _read_run_meta(run_dir)
    stored = config_from_dict(meta["config"])
    differ = {f.name for f in fields(TrainConfig) if getattr(stored, f.name) != getattr(config, f.name)}
    same_init = meta.get("init") == (str(Path(init).resolve()) if init else None)
    if checkpoint is None:
        return "fresh", None  # an earlier attempt died before its first checkpoint: start over
    done_step = json.loads((run_dir / "checkpoints" / LATEST_FILE).read_text())["step"]
    if not differ and same_init and done_step >= config.steps:
        return "done", checkpoint
    if differ - RESUMABLE_CHANGES or not same_init:
        what = ", ".join(f"{k}: {getattr(stored, k)!r} -> {getattr(config, k)!r}" for k in sorted(differ))
        raise ValueError(
            f"{run_dir} holds a run with a different config ({what or 'different --init'}); "
            "pass another --out folder, or the same options to resume it"
        )
    if not resume:
        raise ValueError(
            f"{run_dir} holds an unfinished run (step {done_step}); pass --resume to continue it "
            "or choose another --out folder"
        )
    return "resume", checkpoint


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    init: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train per ``config`` into ``out_dir`` and return the run folder.

    ``init`` (video phase): an image run folder or checkpoint to inflate; without it the video
    model starts from scratch (the baseline). ``resume=True`` continues the newest checkpoint.
    A folder that already holds this finished run (same config and init) is returned at once,
    so notebooks can call ``train`` unconditionally.
    """
    config = validate_config(config)
    run_dir = Path(out_dir)
    env = DistEnv.from_env()
    if config.batch_size % env.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must be divisible by the {env.world_size} processes"
        )
    if init is not None and config.phase != "video":
        raise ValueError("--init inflates an image model into a video model; it needs --phase video")
    mode, checkpoint = _prepare_run(config, run_dir, init, resume, env)
    if mode == "done":
        return run_dir

    # Everything that can fail on bad input happens before any training work.
    init_checkpoint = None
    if init is not None:
        init_checkpoint, init_run = _resolve_checkpoint(init)
        _check_init_fits(load_config(init_run), config, init)
    # Single-process runs build the embedded data on first use; ranks of a DDP job must not race.
    dataset, image_dataset = build_datasets(config, build_missing=env.world_size == 1)
    num_classes = num_classes_of(dataset) if config.class_conditional else 0
    if config.class_conditional and num_classes < 1:
        raise ValueError(f"dataset {config.dataset!r} has no class labels; drop --class-conditional")
    captions = (
        CaptionBank(config, list(getattr(dataset, "class_names", [])), _resolve_device(config, env))
        if text_specs(config)[0]
        else None
    )
    if init_checkpoint is not None:
        _check_architecture_fits(init_run, config, num_classes)
    device = _resolve_device(config, env)
    if config.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)

    torch.manual_seed(config.seed)  # initial weights: identical on every rank
    if init_checkpoint is not None:
        image_denoiser, _ = load_denoiser(init_checkpoint, ema=True)
        model = inflate_denoiser(image_denoiser, config, num_classes)
    else:
        model = build_network(config, num_classes=num_classes)
    model = model.to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = _build_optimizer(config, model)

    distributed = _init_distributed(env, device)
    start_step = 0
    if mode == "resume":
        model.load_state_dict(load_file(str(checkpoint / MODEL_FILE)))
        ema.load_state_dict(load_file(str(checkpoint / EMA_FILE)))
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start_step = int(state["step"])
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": asdict(config),
            "init": str(Path(init).resolve()) if init else None,
            "num_classes": num_classes,
            "world_size": env.world_size,
        }
        _atomic_write_text(run_dir / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    _barrier(distributed)

    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    per_rank = config.batch_size // env.world_size
    video = config.phase == "video"
    loader = _make_loader(dataset, "video" if video else "image", config, env, STREAM_DATA, 1, start_step)
    image_loader = (
        _make_loader(image_dataset, "image", config, env, STREAM_IMAGES, config.joint_images, start_step)
        if image_dataset is not None
        else None
    )
    logger = _Logger(run_dir, start_step, env.is_main)
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16" and device.type == "cuda"
    )
    bar = tqdm(
        total=config.steps,
        initial=start_step,
        disable=not (progress and env.is_main),
        desc=f"train {config.phase}",
        unit="step",
        dynamic_ncols=True,
    )
    model.train()
    tic, interval_loss, interval_steps = time.perf_counter(), 0.0, 0
    images = iter(image_loader) if image_loader is not None else None
    try:
        for step, batch in zip(range(start_step, config.steps), loader, strict=False):
            x, labels = _training_batch(config, batch, next(images) if images else None, device)
            global_shape = (config.batch_size, *x.shape[1:])
            eps = _draw_noise(config, step, global_shape)
            lo, hi = env.rank * per_rank, (env.rank + 1) * per_rank
            eps = eps[lo:hi].to(device)
            sigma = edm.sample_training_sigma(
                config.batch_size,
                p_mean=config.p_mean,
                p_std=config.p_std,
                generator=_generator(config.seed, STREAM_SIGMA, step),
            )
            sigma = sigma[lo:hi].to(device)
            cond_labels = None
            if num_classes:
                keep = torch.rand(config.batch_size, generator=_generator(config.seed, STREAM_LABELS, step))
                cond_labels = torch.where(keep[lo:hi].to(device) < config.label_dropout, -1, labels)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            torch.manual_seed(_step_seed(config.seed, STREAM_DROPOUT, step) + env.rank)  # network dropout

            cond = _conditioning(cond_labels, config.num_frames if video else None, x)
            if captions is not None:
                cond.update(captions.conditioning(labels, config, step, lo, hi))
            with autocast:
                loss = edm.edm_loss(ddp_model, x, eps, sigma, model.sigma_data, **cond).mean()  # eq. 1
            reported = loss.detach().clone()
            if distributed:
                dist.all_reduce(reported, op=dist.ReduceOp.AVG)
            if not torch.isfinite(reported):
                last = latest_checkpoint(run_dir)
                raise TrainingDiverged(
                    f"loss became {reported.item()} at step {step}; stopped without updating the weights. "
                    f"The last good checkpoint is {last or 'none (none written yet)'}. Lower --lr, "
                    "raise --warmup-steps or set --grad-clip, then rerun with --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, foreach=False)
            optimizer.step()
            update_ema(ema, model, step, config.ema_decay)

            done = step + 1
            interval_loss += reported.item()
            interval_steps += 1
            bar.update(1)
            rate = bar.format_dict.get("rate") or 0.0
            bar.set_postfix(
                loss=f"{reported.item():.4f}",
                lr=f"{learning_rate(config, step):.1e}",
                samples_per_s=f"{rate * config.batch_size:.1f}",
            )
            if done % config.log_every == 0 or done == config.steps:
                elapsed = time.perf_counter() - tic
                logger.log(
                    {
                        "step": done,
                        "loss": interval_loss / interval_steps,
                        "lr": learning_rate(config, step),
                        "grad_norm": float(grad_norm),
                        "samples_per_s": interval_steps * config.batch_size / max(elapsed, 1e-9),
                        "elapsed_s": elapsed,
                    }
                )
                tic, interval_loss, interval_steps = time.perf_counter(), 0.0, 0
            if done % config.checkpoint_every == 0 or done == config.steps:
                if env.is_main:
                    save_checkpoint(
                        run_dir,
                        done,
                        model=model,
                        ema=ema,
                        optimizer=optimizer,
                        complete=done == config.steps,
                    )
                    _prune_checkpoints(run_dir, config.keep_checkpoints)
                if distributed:
                    _check_in_sync(model, run_dir, done, env)
                _barrier(distributed)
            if env.is_main and (
                (config.sample_every and done % config.sample_every == 0) or done == config.steps
            ):
                save_samples(config, ema, run_dir, done, device, num_classes)
    finally:
        bar.close()
        logger.close()
    _barrier(distributed)
    return run_dir


def _check_in_sync(model: torch.nn.Module, run_dir: Path, step: int, env: DistEnv) -> None:
    """All ranks must hold the same weights (DDP averages gradients, so updates are identical)."""
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1).cpu()
    gathered = [torch.zeros_like(checksum) for _ in range(env.world_size)]
    dist.all_gather(gathered, checksum)
    values = [float(v) for v in gathered]
    if env.is_main:
        _atomic_write_text(run_dir / "sync.json", json.dumps({"step": step, "checksums": values}))
    if len(set(values)) != 1:
        raise RuntimeError(f"ranks diverged at step {step}: weight checksums {values}")


def config_fields() -> list[dataclasses.Field]:
    """The TrainConfig fields, in order (the CLI builds one option per field)."""
    return list(fields(TrainConfig))
