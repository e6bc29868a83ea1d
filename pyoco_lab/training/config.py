"""Configuration: the flat ``TrainConfig`` (every field a ``pyoco-lab train`` option), the paper's
optimiser settings, the named presets (data, not branches), and the checks that reject a bad
config before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from pyoco_lab import edm, noise
from pyoco_lab.models.cascade import SR_FACTOR, interpolation_frameskip
from pyoco_lab.models.text import DEFAULT_TEXT_DROPOUT, encoder_kind
from pyoco_lab.sampling import SamplerSpec


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
    stage: str = _opt(
        "base",
        "cascade stage (Fig. 3): base; interpolation (fills the frames between every k-th known frame, "
        "A.1 (3); --init a base video run, A.1 (6)); sr (learns the clip from its 4x smaller copy)",
        ("base", "interpolation", "sr"),
    )
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
        "",
        "probability of dropping each encoder's text embedding, as NAME=P pairs, e.g. t5=0.25,clip=0.2; "
        "an encoder not named keeps its default (Table F: t5 0.25, clip 0.2; ours: minilm 0.1); "
        "a bare number is accepted with exactly one encoder",
    )
    # optimisation (A.3 for UCF-101, Table F for the large-scale setting)
    batch_size: int = _opt(16, "global batch size (summed over all processes)")
    grad_accumulation: int = _opt(
        1,
        "micro-batches per optimiser step (gradient accumulation, to fit memory): each process runs "
        "batch_size / (processes x N) rows at a time, gradients summed; the global batch stays --batch-size",
    )
    steps: int = _opt(1000, "total optimiser steps")
    optimizer: str = _opt("adam", "optimiser", ("adam", "adamw"))
    lr: float = _opt(2e-4, "base learning rate (A.3: 2e-4 image, 1e-4 video)")
    warmup_steps: int = _opt(5000, "linear learning-rate warm-up steps (A.3: 5000)")
    decay_steps: int = _opt(
        0,
        "decay the learning rate linearly to zero over the last N steps (0: constant after warm-up, as A.3); "
        "a run at constant rate may be resumed with a decay added, while its checkpoint precedes the decay",
    )
    weight_decay: float = _opt(0.0, "weight decay (Table F: 0.01 with AdamW)")
    train_layers: str = _opt(
        "all",
        "which layers a video finetune trains: all, or temporal (the image model's spatial layers frozen, as "
        "motion modules are trained on a fixed image model)",
        ("all", "temporal"),
    )
    temporal_lr_scale: float = _opt(
        1.0, "learning-rate multiplier of the temporal layers (video phase: they start as the identity)"
    )
    beta1: float = _opt(0.9, "Adam beta1")
    beta2: float = _opt(0.999, "Adam beta2")
    ema_decay: float = _opt(0.9999, "EMA decay (Table F: 0.9999); ramped up as min(decay, (1+t)/(10+t))")
    grad_clip: float = _opt(1.0, "clip the global gradient norm to this value (0: off)")
    p_mean: float = _opt(edm.P_MEAN, "mean of ln(sigma) during training (EDM)")
    p_std: float = _opt(edm.P_STD, "std of ln(sigma) during training (EDM)")
    # hardware
    device: str = _opt("auto", "auto (cuda:LOCAL_RANK when available, else cpu), cpu, cuda, cuda:N")
    precision: str = _opt(
        "fp32",
        "bf16 autocasts the network (GPU and CPU; loss, EMA, Adam stay fp32); auto picks bf16 on a GPU, and "
        "on a CPU with native bf16 (amx_bf16 / avx512_bf16) where a few steps measured at the start are "
        "faster; config.json records what was picked",
        ("fp32", "bf16", "auto"),
    )
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
    # the stochastic sampler's options (EDM Alg. 2) for the periodic samples; churn noise follows the prior
    sample_step: str = _opt(
        "heun", "ODE step of --sampler stochastic (rk3: DEIS 3kutta, A.3)", ("euler", "heun", "rk3")
    )
    sample_churn: float = _opt(0.0, "S_churn of --sampler stochastic (0: no churn; ucf-*: 40, EDM's)")
    sample_churn_tmin: float = _opt(0.0, "S_tmin of --sampler stochastic: churn for sigma >= S_tmin")
    sample_churn_tmax: float = _opt(math.inf, "S_tmax of --sampler stochastic: churn for sigma <= S_tmax")
    sample_churn_noise: float = _opt(1.0, "S_noise of --sampler stochastic (churn noise scale)")

    def sampler_spec(self) -> SamplerSpec:
        """The sampler of the run's periodic samples (``sampler``, ``sample_steps``, ``sample_*``)."""
        return SamplerSpec(
            self.sampler,
            self.sample_steps,
            step=self.sample_step,
            s_churn=self.sample_churn,
            s_tmin=self.sample_churn_tmin,
            s_tmax=self.sample_churn_tmax,
            s_noise=self.sample_churn_noise,
        )

    @property
    def prior(self) -> noise.NoisePrior:
        """The run's noise prior; images are always trained with i.i.d. noise."""
        return (
            noise.NoisePrior("iid", 0.0)
            if self.phase == "image"
            else noise.NoisePrior(self.noise, self.alpha)
        )


# Fields that may change when a run is resumed or extended: they do not alter the optimisation.
# ``steps`` and ``decay_steps`` place the learning-rate decay, so changing them is allowed only while
# the resumed checkpoint precedes the decay in both schedules (checked by ``decay_start``'s users).
RESUMABLE_CHANGES = frozenset(
    {
        "steps",
        "decay_steps",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "sample_every",
        "num_samples",
        "sampler",
        "sample_steps",
        "sample_step",
        "sample_churn",
        "sample_churn_tmin",
        "sample_churn_tmax",
        "sample_churn_noise",
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
    # A.3: "stochastic DEIS sampler with 3kutta, [...] 25 steps" (the same sampler as the ucf evaluation,
    # pyoco_lab.analysis.presets.UCF_SAMPLER). The paper gives no churn values: EDM's ImageNet-64
    # ones (S_churn 40, S_tmin 0.05, S_tmax 50, S_noise 1.003), see docs/metrics.md "Samplers".
    sampler="stochastic",
    sample_steps=25,
    sample_step="rk3",
    sample_churn=40.0,
    sample_churn_tmin=0.05,
    sample_churn_tmax=50.0,
    sample_churn_noise=1.003,
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
    """``PRESETS[preset]`` for ``phase``, then an optional optimiser preset, then ``overrides``.

    Overriding ``noise`` to "iid" without an ``alpha`` also resets the preset's alpha to 0 (the
    video presets carry progressive alpha=2, which i.i.d. noise would silently ignore).
    """
    if overrides.get("noise") == "iid" and "alpha" not in overrides:
        overrides = {**overrides, "alpha": 0.0}
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
        "grad_accumulation",
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
    for name in ("joint_images", "warmup_steps", "decay_steps", "num_workers", "sample_every"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")
    if config.decay_steps > config.steps:
        raise ValueError(
            f"decay_steps ({config.decay_steps}) exceeds steps ({config.steps}); "
            "pass --decay-steps <= --steps"
        )
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
    if not 0.0 <= config.label_dropout <= 1.0:
        raise ValueError(f"label_dropout must be in [0, 1], got {config.label_dropout}")
    # Raises on a malformed --text-encoders / --text-dropout; stores the rates of the encoders in use
    # by name (t5=0.25,clip=0.2), so equal settings compare equal however they were written.
    config = dataclasses.replace(config, text_dropout=_canonical_text_dropout(config))
    _validate_stage(config)
    if config.phase == "image" and (config.noise != "iid" or config.alpha != 0 or config.joint_images):
        raise ValueError(
            "the image phase trains single frames with i.i.d. noise; drop --noise/--alpha/--joint-images "
            "or pass --phase video"
        )
    if config.phase == "image" and (config.train_layers != "all" or config.temporal_lr_scale != 1.0):
        raise ValueError(
            "an image model has no temporal layers; drop --train-layers/--temporal-lr-scale or pass "
            "--phase video"
        )
    if not config.temporal_lr_scale > 0:
        raise ValueError(f"temporal_lr_scale must be > 0, got {config.temporal_lr_scale}")
    if config.noise == "iid" and config.alpha != 0:
        raise ValueError(
            "alpha has no effect with --noise iid; drop --alpha or choose --noise mixed/progressive "
            f"(got alpha={config.alpha:g})"
        )
    noise.validate_kind(config.noise)
    return config


def _validate_stage(config: TrainConfig) -> None:
    """An interpolation model trains on windows of 1 + 3k frames holding 4 known ones (A.1 (3)); an SR
    model learns frames from SR_FACTOR times smaller ones."""
    if config.stage == "interpolation":
        try:
            interpolation_frameskip(config.num_frames)
            frames_ok = True
        except ValueError:
            frames_ok = False
        if config.phase != "video" or config.joint_images or not frames_ok:
            raise ValueError(
                "--stage interpolation trains a video model on clips whose every k-th frame is known: "
                "it needs --phase video, --joint-images 0 and --num-frames 1+3k with k >= 2 (7, 10, 13, "
                f"16); got --phase {config.phase} --joint-images {config.joint_images} "
                f"--num-frames {config.num_frames}"
            )
    if config.stage == "sr" and (config.resolution % SR_FACTOR or config.resolution < 8 * SR_FACTOR):
        raise ValueError(
            f"--stage sr learns {config.resolution} px frames from {SR_FACTOR}x smaller ones; pick a "
            f"--resolution divisible by {SR_FACTOR} and at least {8 * SR_FACTOR}"
        )


def _text_dropout_rates(value: str, specs: tuple[str, ...]) -> dict[str, float]:
    """Dropout rate by encoder name: the defaults, overridden by ``--text-dropout NAME=P,...``."""
    kinds = [encoder_kind(spec) for spec in specs]
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    bad_format = ValueError(
        "--text-dropout must be comma-separated NAME=P pairs with NAME one of "
        f"{', '.join(DEFAULT_TEXT_DROPOUT)} and numbers P in [0, 1] (e.g. t5=0.25,clip=0.2), got {value!r}"
    )
    if entries and not any("=" in entry for entry in entries):  # bare numbers, by position
        if len(entries) != 1 or len(specs) != 1:  # unambiguous only as one number for one encoder
            raise ValueError(
                f"a bare --text-dropout {value!r} does not say which of the {len(specs)} text encoder(s) "
                "each number is for (a bare number needs exactly one encoder): give one probability "
                "per encoder name, e.g. --text-dropout t5=0.25,clip=0.2"
            )
        entries = [f"{kinds[0]}={entries[0]}"]
    rates = dict(DEFAULT_TEXT_DROPOUT)
    named = set()
    for entry in entries:
        name, sep, number = (part.strip() for part in entry.partition("="))
        try:
            rate = float(number)
        except ValueError:
            raise bad_format from None
        if not sep or name not in DEFAULT_TEXT_DROPOUT or not 0.0 <= rate <= 1.0 or name in named:
            raise bad_format
        named.add(name)
        rates[name] = rate
    return rates


def text_specs(config: TrainConfig) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The text encoders of ``--text-encoders`` and their dropout probabilities (one each, by name:
    the order of the encoders does not matter)."""
    specs = tuple(spec.strip() for spec in config.text_encoders.split(",") if spec.strip())
    if not specs:
        return (), ()
    rates = _text_dropout_rates(config.text_dropout, specs)
    return specs, tuple(rates[encoder_kind(spec)] for spec in specs)


def _canonical_text_dropout(config: TrainConfig) -> str:
    """``--text-dropout`` as NAME=P for each encoder in use, in encoder order ("" without text)."""
    specs, probs = text_specs(config)
    rates = dict(zip((encoder_kind(spec) for spec in specs), probs, strict=True))
    return ",".join(f"{name}={rate!r}" for name, rate in rates.items())


def _legacy_text_dropout(encoders: str, value: str) -> str:
    """A positional ``text_dropout`` of a run written before the rates were keyed by encoder name:
    the i-th number was the i-th encoder's rate (extra numbers unused)."""
    kinds = [spec.strip().partition(":")[0] for spec in encoders.split(",") if spec.strip()]
    numbers = [number.strip() for number in value.split(",") if number.strip()]
    pairs = {}
    for kind, number in zip(kinds, numbers, strict=False):
        pairs.setdefault(kind, number)
    return ",".join(f"{kind}={number}" for kind, number in pairs.items())


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as valid JSON values: an infinite float (alpha = inf, S_tmax) as the string "inf", since
    JSON has no Infinity (Python writes one, most other readers refuse it); :func:`config_from_dict`
    reads both."""
    return {
        k: ("inf" if v > 0 else "-inf") if isinstance(v, float) and math.isinf(v) else v
        for k, v in dataclasses.asdict(config).items()
    }


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}; this file was written by another version")
    floats = {f.name for f in fields(TrainConfig) if f.type == "float"}  # annotations are strings here
    values = {k: float(v) if k in floats and isinstance(v, str) else v for k, v in values.items()}
    if values.get("noise", "iid") == "iid" and values.get("alpha", 0.0) != 0.0:
        # Runs written before iid + alpha was refused kept the preset's alpha, which had no effect.
        values = {**values, "alpha": 0.0}
    dropout = values.get("text_dropout", "")
    if dropout and "=" not in dropout:  # written when the rates were positional ("0.25,0.2")
        values = {**values, "text_dropout": _legacy_text_dropout(values.get("text_encoders", ""), dropout)}
    return validate_config(TrainConfig(**values))


# Fields added after runs were cached and committed, with the value at which they change nothing: a
# cache key leaves a field out at that value, so results keyed before it existed still match their runs.
KEY_NEUTRAL_VALUES = {"decay_steps": 0, "train_layers": "all", "temporal_lr_scale": 1.0}


def decay_start(config: TrainConfig) -> int | float:
    """The first step whose learning rate is decayed (infinity when the rate stays constant)."""
    return config.steps - config.decay_steps if config.decay_steps else math.inf


def default_run_name(preset: str, config: TrainConfig, *, init: bool) -> str:
    """``quick-image``, ``quick-video-progressive-a2`` (finetuned) or ``quick-video-iid-scratch``;
    a stage other than base is named after the preset (``quick-interpolation-video-...``)."""
    name = preset if config.stage == "base" else f"{preset}-{config.stage}"
    if config.phase == "image":
        return f"{name}-image"
    prior = "iid" if config.noise == "iid" else f"{config.noise}-a{config.alpha:g}"
    return f"{name}-video-{prior}" + ("" if init else "-scratch")


def config_fields() -> list[dataclasses.Field]:
    """The TrainConfig fields, in order (the CLI builds one option per field)."""
    return list(fields(TrainConfig))


def config_cli_args(config: TrainConfig) -> list[str]:
    """``pyoco-lab train`` flags that rebuild exactly ``config`` (whatever the preset): ``--phase`` and one
    flag per field (``--x``/``--no-x`` for booleans); fields at None are omitted (None is their default)."""
    args = ["--phase", config.phase]
    for f in dataclasses.fields(TrainConfig):
        value = getattr(config, f.name)
        if f.name == "phase" or value is None:
            continue
        option = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(option if value else "--no-" + f.name.replace("_", "-"))
        else:
            args += [option, str(value)]
    return args
