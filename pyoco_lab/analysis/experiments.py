"""The reproduction plan as data: what each preset runs, and a cache so nothing is trained twice.

A :class:`Settings` per preset (``smoke`` for CI, ``quick`` for 2 CPU cores in < 20 minutes,
``standard`` for one GPU hour, ``ucf`` for the paper's UCF-101 setting) holds every knob of the
seven notebooks. A notebook calls ``settings(preset, knob=value_or_None, ...)``: ``None`` keeps the
preset's value, anything else overrides it, unknown names are rejected.

Training runs are described by :class:`RunSpec` (a :class:`pyoco_lab.training.TrainConfig` plus the
image run it is finetuned from, if any). Its folder name is derived from a hash of the config,
so the alpha sweep, the strategies table and the model-size study share identical runs through
``cache_dir`` -- ``pyoco_lab.training.train`` returns at once when the folder holds a finished run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pyoco_lab.metrics.evaluate import evaluate_run
from pyoco_lab.training import TrainConfig, preset_config, train

INF = math.inf


@dataclass(frozen=True)
class Settings:
    """Every knob of the figure notebooks for one preset (see docs/reproduce.md)."""

    name: str
    description: str
    budget: str
    # training (pyoco_lab.training presets with these overrides)
    train_preset: str = "quick"
    model: str | None = None  # None: the train preset's model
    image_steps: int | None = None  # None: the train preset's
    video_steps: int | None = None
    batch_size: int | None = None
    num_frames: int | None = None
    resolution: int | None = None
    # Fig. 7 alpha sweep / Table 5 / Fig. 8 / Fig. 6
    alphas: tuple[float, ...] = (0.0, 1.0, 2.0, INF)
    kinds: tuple[str, ...] = ("mixed", "progressive")
    seeds: tuple[int, ...] = (0,)
    strategy_alphas: tuple[float, float] = (1.0, 2.0)  # Table 5: mixed alpha, progressive alpha
    size_models: tuple[str, ...] = ()
    sample_alphas: tuple[float, ...] = (0.0, 1.0, 10.0)  # Fig. 6
    sample_prior: str = "mixed"
    eval_samples: int = 64  # generated clips per metric evaluation
    sample_steps: int = 18  # sampler steps for evaluation and Fig. 6
    # 01 noise priors
    noise_alphas: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0, 2.0, 10.0, INF)
    noise_frames: int = 8
    noise_samples: int = 256
    noise_resolution: int = 16
    # 02 inversion (Table 1) and 03 t-SNE (Fig. 2)
    inversion_videos: int = 16
    inversion_frames: int = 8
    inversion_steps: int = 32
    tsne_videos: int = 6
    tsne_frames: int = 8
    tsne_perplexity: float = 10.0
    train_extra: dict[str, Any] = field(default_factory=dict)  # any other TrainConfig overrides

    def train_overrides(self, phase: str) -> dict[str, Any]:
        """TrainConfig overrides common to every run of this preset (None = keep the train preset's)."""
        values = {
            "model": self.model,
            "batch_size": self.batch_size,
            "num_frames": self.num_frames,
            "resolution": self.resolution,
            "steps": self.image_steps if phase == "image" else self.video_steps,
            **self.train_extra,
        }
        return {k: v for k, v in values.items() if v is not None}


SETTINGS: dict[str, Settings] = {
    "smoke": Settings(
        "smoke",
        "CI: proves every notebook runs end to end and writes sane files; the numbers mean nothing",
        "< 1 minute per notebook on 2 CPU cores",
        train_preset="quick",
        image_steps=4,
        video_steps=3,
        batch_size=2,
        num_frames=4,
        # no warm-up, and the end-of-run samples every run writes kept to one cheap sample
        train_extra={"warmup_steps": 0, "num_samples": 1, "sample_steps": 2, "log_every": 1},
        alphas=(0.0, 1.0, INF),
        strategy_alphas=(1.0, 1.0),
        seeds=(0,),
        size_models=(),
        sample_alphas=(0.0, 1.0, 10.0),
        eval_samples=4,
        sample_steps=4,
        noise_alphas=(0.0, 1.0, INF),
        noise_frames=4,
        noise_samples=16,
        noise_resolution=8,
        inversion_videos=3,
        inversion_frames=4,
        inversion_steps=4,
        tsne_videos=3,
        tsne_frames=4,
        tsne_perplexity=3.0,
    ),
    "quick": Settings(
        "quick",
        "2 CPU cores: tiny models at 32x32, 8-frame clips of the embedded data, a few hundred steps",
        "all seven notebooks < 20 minutes on 2 CPU cores, from a fresh clone",
        train_preset="quick",
        # Measured on 2 idle cores: ~60 s per 100-step video finetune + ~20 s per evaluation, ~150 s
        # per image model. 11 video runs (alpha sweep 7, Fig. 6's mixed alpha = 10, Fig. 8's lab-s 3)
        # and 2 image models keep all seven notebooks under 20 minutes, data build included.
        video_steps=100,
        alphas=(0.0, 1.0, 2.0, INF),
        seeds=(0,),
        # the larger size is the sweep's own model, so its runs are shared with Fig. 7 / Table 5
        size_models=("lab-s", "tiny"),
        eval_samples=32,
        sample_steps=8,
        inversion_videos=16,
        inversion_frames=8,
        inversion_steps=24,
    ),
    "standard": Settings(
        "standard",
        "one GPU: 64x64, 16-frame clips of the embedded data, the A.3 optimiser",
        "about one GPU hour for all seven notebooks",
        train_preset="standard",
        model="lab-l",
        # ~25 runs must fit one GPU hour: shorter phases than pyoco_lab.training's standard preset
        image_steps=6000,
        video_steps=1500,
        size_models=("lab-s", "lab-m", "lab-l"),
        alphas=(0.0, 0.5, 1.0, 2.0, 5.0, 10.0, INF),
        seeds=(0,),
        eval_samples=256,
        inversion_videos=64,
        inversion_frames=16,
        inversion_steps=32,
        tsne_videos=8,
        tsne_frames=16,
        tsne_perplexity=20.0,
        noise_frames=16,
    ),
    "ucf": Settings(
        "ucf",
        "the paper's UCF-101 setting: 16x64x64 clips, Tables G-I models (69M/112M/253M), A.3 optimiser",
        "GPU-days: ~2-4 days per 200k-step image model and ~1-2 days per 100k-step finetune on 8 GPUs; "
        "the full alpha sweep is 16 finetunes x 3 seeds (see docs/reproduce.md)",
        train_preset="ucf-small",
        alphas=(0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, INF),
        seeds=(0, 1, 2),
        size_models=("ucf-small", "ucf-medium", "ucf-large"),
        eval_samples=2048,
        sample_steps=25,
        inversion_videos=256,
        inversion_frames=16,
        inversion_steps=32,
        tsne_videos=10,
        tsne_frames=16,
        tsne_perplexity=30.0,
        noise_frames=16,
    ),
}


def settings(preset: str, **overrides) -> Settings:
    """``SETTINGS[preset]`` with every non-None override applied (unknown knob names are rejected)."""
    if preset not in SETTINGS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(SETTINGS)}")
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = {}
    for name, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, list):
            value = tuple(float(v) if name.endswith("alphas") else v for v in value)
        chosen[name] = value
    return replace(SETTINGS[preset], **chosen)


# ----------------------------------------------------------------------------------------------
# Training runs and the shared cache.


@dataclass(frozen=True)
class RunSpec:
    """One training run: its config and, for a finetune, the image run it starts from."""

    label: str
    config: TrainConfig
    init: RunSpec | None = None

    def key(self) -> str:
        """A short hash of everything that changes the result (config and init chain)."""
        payload = {"config": _config_dict(self.config), "init": self.init.key() if self.init else None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]

    def folder(self, cache_dir: str | os.PathLike) -> Path:
        return Path(cache_dir) / "runs" / f"{self.label}-{self.key()}"


def _config_dict(config) -> dict:
    values = dataclasses.asdict(config)
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def image_run(s: Settings, *, model: str | None = None, seed: int = 0) -> RunSpec:
    """The image model pre-trained on frames (i.i.d. noise), shared by every finetune of that size."""
    overrides = s.train_overrides("image")
    if model is not None:
        overrides["model"] = model
    config = preset_config(s.train_preset, "image", seed=seed, **overrides)
    return RunSpec(f"image-{config.model}", config)


def video_run(
    s: Settings,
    kind: str,
    alpha: float,
    *,
    finetune: bool = True,
    model: str | None = None,
    seed: int = 0,
) -> RunSpec:
    """A video run with prior (kind, alpha), finetuned from the image model or from scratch.

    alpha = 0 is i.i.d. noise whatever the kind, and alpha = inf is the same noise in every frame
    for both mixed and progressive; those runs are normalised to one config so they are shared.
    """
    alpha = float(alpha)
    if alpha == 0.0 or kind == "iid":
        kind, alpha = "iid", 0.0
    elif math.isinf(alpha):
        kind = "mixed"
    overrides = s.train_overrides("video")
    if model is not None:
        overrides["model"] = model
    config = preset_config(s.train_preset, "video", noise=kind, alpha=alpha, seed=seed, **overrides)
    alpha_name = "inf" if math.isinf(alpha) else f"{alpha:g}"
    origin = "ft" if finetune else "scratch"
    label = f"video-{config.model}-{origin}-{kind}-{alpha_name}-s{seed}"
    return RunSpec(label, config, image_run(s, model=model) if finetune else None)


def ensure_run(spec: RunSpec, cache_dir: str | os.PathLike, *, progress: bool = True) -> Path:
    """Train ``spec`` (and its image model first) unless ``cache_dir`` already holds it; return its folder.

    A run killed part-way resumes from its newest intact checkpoint: the folder is named by a hash of
    the config and init chain, so whatever is in it can only be this run.
    """
    init = ensure_run(spec.init, cache_dir, progress=progress) if spec.init is not None else None
    return Path(train(spec.config, spec.folder(cache_dir), init=init, resume=True, progress=progress))


def alpha_sweep_runs(s: Settings) -> dict[str, dict[float, list[RunSpec]]]:
    """Fig. 7: {kind: {alpha: [one run per seed]}} plus {"scratch": {0: [...]}} (i.i.d., from scratch)."""
    plan: dict[str, dict[float, list[RunSpec]]] = {
        kind: {a: [video_run(s, kind, a, seed=seed) for seed in s.seeds] for a in s.alphas}
        for kind in s.kinds
    }
    plan["scratch"] = {0.0: [video_run(s, "iid", 0.0, finetune=False, seed=seed) for seed in s.seeds]}
    return plan


def strategy_runs(s: Settings, *, model: str | None = None) -> dict[str, RunSpec]:
    """Table 5: from scratch, finetune i.i.d., + mixed, + progressive (first seed)."""
    mixed_alpha, progressive_alpha = s.strategy_alphas
    seed = s.seeds[0]
    return {
        "scratch": video_run(s, "iid", 0.0, finetune=False, model=model, seed=seed),
        "finetune": video_run(s, "iid", 0.0, model=model, seed=seed),
        "mixed": video_run(s, "mixed", mixed_alpha, model=model, seed=seed),
        "progressive": video_run(s, "progressive", progressive_alpha, model=model, seed=seed),
    }


def model_size_runs(s: Settings) -> dict[str, dict[str, RunSpec]]:
    """Fig. 8: {model: {"scratch"|"mixed"|"progressive": run}} at the preset's model sizes."""
    plan = {}
    for model in s.size_models or (s.model,):
        runs = {k: v for k, v in strategy_runs(s, model=model).items() if k != "finetune"}
        plan[runs["scratch"].config.model] = runs
    return plan


def sample_runs(s: Settings) -> dict[float, RunSpec]:
    """Fig. 6: one finetuned run per alpha of ``sample_alphas`` with ``sample_prior``."""
    return {float(a): video_run(s, s.sample_prior, a, seed=s.seeds[0]) for a in s.sample_alphas}


def all_runs(s: Settings) -> list[RunSpec]:
    """Every distinct run the seven notebooks need (image models included), in training order."""
    specs: list[RunSpec] = []
    for per_alpha in alpha_sweep_runs(s).values():
        for runs in per_alpha.values():
            specs.extend(runs)
    specs.extend(strategy_runs(s).values())
    for per_model in model_size_runs(s).values():
        specs.extend(per_model.values())
    specs.extend(sample_runs(s).values())
    unique: dict[str, RunSpec] = {}
    for spec in specs:
        if spec.init is not None:
            unique.setdefault(spec.init.key(), spec.init)
        unique.setdefault(spec.key(), spec)
    return list(unique.values())


# ----------------------------------------------------------------------------------------------
# Evaluation, cached in each run's eval.json (pyoco_lab.metrics.evaluate writes it).

# The metric each figure ranks runs by, and the paper's metric it stands in for.
SWEEP_METRIC = "FVD-lab"  # Fig. 7 / Fig. 8 use FVD; the lab's FVD when I3D weights are absent
TABLE5_METRICS = {"IS-lab": "IS", "FVD-lab": "FVD", "FD-frame-lab": "FID"}  # ours -> paper's column
PAPER_METRICS = {"IS": "IS", "FVD": "FVD", "FID-frame": "FID"}  # when the paper's networks are present
LOWER_IS_BETTER = {
    "FVD-lab": True,
    "FD-frame-lab": True,
    "IS-lab": False,
    "FVD": True,
    "FID-frame": True,
    "IS": False,
}


def evaluate(run_dir: str | os.PathLike, s: Settings, *, seed: int = 0, progress: bool = True) -> dict:
    """``evaluate_run``'s result for a video run ({"generated": {...}, "real-test": {...}, ...}), cached.

    ``evaluate_run`` stores every evaluation in ``RUN/eval.json`` under its key (checkpoint, sampler,
    sample count, seed, weights and protocol: ``metrics.evaluate.evaluation_key``); with ``reuse=True`` an
    evaluation stored under the very same key is read back instead of sampling again.
    """
    return evaluate_run(
        run_dir,
        num_samples=s.eval_samples,
        num_steps=s.sample_steps,
        seed=seed,
        progress=progress,
        reuse=True,
    )


def train_and_evaluate(
    groups: Mapping[Any, Sequence[RunSpec]],
    s: Settings,
    cache_dir: str | os.PathLike,
    *,
    progress: bool = True,
) -> dict[Any, list[dict]]:
    """Train (or find) and evaluate every run of ``groups``; {key: [generated-sample metrics per run]}.

    One progress bar over all runs; a run shared between groups is trained and evaluated once.
    """
    total = sum(len(runs) for runs in groups.values())
    bar = tqdm(total=total, desc="train + evaluate", unit="run", disable=not progress)
    scores: dict[Any, list[dict]] = {}
    for key, runs in groups.items():
        scores[key] = []
        for spec in runs:
            bar.set_postfix_str(spec.label)
            run_dir = ensure_run(spec, cache_dir, progress=False)
            scores[key].append(evaluate(run_dir, s, progress=False)["generated"])
            bar.update()
    bar.close()
    return scores


def mean_std(values: list[float]) -> dict[str, float | list[float]]:
    """Mean and sample standard deviation over seeds (std 0 for a single seed)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": list(values)}
