"""Training: image pre-training on frames, then video finetuning with a noise prior (Section 5, A.3).

One module per concern, layered top to bottom (each imports only those above it)::

    config        TrainConfig, the paper's optimiser settings, PRESETS, validation
    randomness    per-step seeded generators (what makes resume exact), RNG state
    distributed   torchrun ranks, devices, DDP set-up, the in-sync check
    batches       datasets, the resumable data order, joint image-video batches, conditioning
    networks      the model's birth: build, inflate (A.1), fit checks
    pretrained    image models shipped with the lab: ``pretrained:NAME``, verified by sha256
    checkpoints   run folders, atomic checkpoints, load_denoiser / load_cascade, fresh/resume/done
    monitoring    progress bar, log.csv + TensorBoard, periodic EMA samples
    loop          train(): the algorithm, read top to bottom

Everything other code needs is importable from here: ``from pyoco_lab.training import train``.
"""

from pyoco_lab.training import pretrained
from pyoco_lab.training.batches import CaptionBank, build_datasets, data_indices
from pyoco_lab.training.checkpoints import (
    CONFIG_FILE,
    EMA_FILE,
    LATEST_FILE,
    MODEL_FILE,
    STATE_FILE,
    CheckpointUnreadable,
    RunFolderBusy,
    checkpoint_dir,
    default_runs_root,
    describe_source,
    ema_sha256,
    latest_checkpoint,
    load_cascade,
    load_config,
    load_denoiser,
    recorded_step,
    resolve_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from pyoco_lab.training.config import (
    OPTIMIZER_PRESETS,
    PRESETS,
    RESUMABLE_CHANGES,
    Preset,
    TrainConfig,
    config_cli_args,
    config_fields,
    config_from_dict,
    default_run_name,
    preset_config,
    text_specs,
    validate_config,
)
from pyoco_lab.training.distributed import DistEnv
from pyoco_lab.training.loop import TrainingDiverged, build_optimizer, learning_rate, train, update_ema
from pyoco_lab.training.networks import build_network, inflate_denoiser, unet_config

__all__ = [
    "CONFIG_FILE",
    "EMA_FILE",
    "LATEST_FILE",
    "MODEL_FILE",
    "OPTIMIZER_PRESETS",
    "PRESETS",
    "RESUMABLE_CHANGES",
    "STATE_FILE",
    "CaptionBank",
    "CheckpointUnreadable",
    "RunFolderBusy",
    "DistEnv",
    "Preset",
    "TrainConfig",
    "TrainingDiverged",
    "build_datasets",
    "build_network",
    "build_optimizer",
    "checkpoint_dir",
    "config_cli_args",
    "config_fields",
    "config_from_dict",
    "data_indices",
    "default_run_name",
    "default_runs_root",
    "describe_source",
    "ema_sha256",
    "inflate_denoiser",
    "latest_checkpoint",
    "learning_rate",
    "load_cascade",
    "load_config",
    "load_denoiser",
    "preset_config",
    "pretrained",
    "recorded_step",
    "resolve_checkpoint",
    "save_checkpoint",
    "text_specs",
    "train",
    "unet_config",
    "update_ema",
    "validate_config",
    "verify_checkpoint",
]
