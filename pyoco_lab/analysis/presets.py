"""The figure presets: every knob of the figure notebooks for one preset, and how a preset samples.

A :class:`Settings` per preset (``smoke`` for CI, ``quick`` for 2 CPU cores in < 20 minutes,
``standard`` for one GPU hour, ``ucf`` for the paper's UCF-101 setting, ``cpu-32`` for the lab's
reference study) holds every knob of the figure notebooks. A notebook calls ``settings(preset,
knob=value_or_None, ...)``: ``None`` keeps the preset's value, anything else overrides it, unknown names
are rejected. Its ``sampler`` (a :class:`pyoco_lab.sampling.SamplerSpec`: an ``edm.SAMPLERS`` kind, its
steps and options) says how a preset draws samples. What the presets *run* is planned from these by
:mod:`pyoco_lab.analysis.experiments`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from typing import Any

from pyoco_lab.sampling import SamplerSpec

__all__ = ["INF", "SETTINGS", "UCF_SAMPLER", "Settings", "settings"]

INF = math.inf

# Appendix A.3: "stochastic DEIS sampler with 3kutta, order 6 and 25 steps". 3kutta is Kutta's third-order
# single-step Runge-Kutta method, so its order is 3 whatever "order" says (docs/metrics.md "Samplers"); the
# paper gives no churn values, so EDM's ImageNet-64 ones (its only published 64x64 setting, the paper's
# reference [21] for the stochastic variant). The ucf-* training presets' periodic samples use the same.
UCF_SAMPLER = SamplerSpec("stochastic", 25, step="rk3", s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)


@dataclass(frozen=True)
class Settings:
    """Every knob of the figure notebooks for one preset (see docs/reproduce.md)."""

    name: str
    description: str
    budget: str
    # training (pyoco_lab.training presets with these overrides)
    train_preset: str = "quick"
    # The image model every finetune starts from (Section 5): a model shipped with the lab
    # ("pretrained:NAME", docs/pretrained.md) or None to pre-train one in the cache. pretrain_image=True
    # re-trains it from scratch for those who want the whole chain (`pyoco-lab reproduce --pretrain-image`).
    image_model: str | None = None
    pretrain_image: bool = False
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
    # Fresh seeds that take no part in choosing (issue #24): Fig. 7's best alpha per prior is chosen on
    # ``seeds`` (best mean SELECTION_METRIC), then its claims are re-tested on these (confirmation_runs).
    confirm_seeds: tuple[int, ...] = ()
    # TrainConfig overrides of the runs on ``confirm_seeds`` only (applied after train_extra): the arithmetic
    # every confirmation run shares, so each confirmatory claim compares runs made alike on any machine.
    confirm_extra: dict[str, Any] = field(default_factory=dict)
    strategy_alphas: tuple[float, float] = (1.0, 2.0)  # Table 5: mixed alpha, progressive alpha
    size_models: tuple[str, ...] = ()
    sample_alphas: tuple[float, ...] = (0.0, 1.0, 10.0)  # Fig. 6
    # TrainConfig overrides of Fig. 6's runs only (applied after train_extra): the recipe of the shipped
    # alpha zoo when it differs from the study's, so Fig. 6 shows the models the lab ships (issue #38).
    sample_extra: dict[str, Any] = field(default_factory=dict)
    # Fig. 6 samples a shipped model with its recorded sampling prior ("recorded": the prior a sweep found
    # it keeps scenes best with, issue #38) or with the prior it was trained with ("training").
    sample_with: str = "recorded"
    # The finetune-length curve (notebook 08): motion energy and FVD-lab of these priors' Fig. 7 runs at each
    # of ``curve_steps`` (checkpoints the runs keep: train_extra's checkpoint_every / keep_checkpoints),
    # ``curve_samples`` clips per point. Empty curve_steps: the runs' final step only.
    curve_priors: tuple[tuple[str, float], ...] = (("iid", 0.0), ("progressive", 2.0), ("mixed", INF))
    curve_steps: tuple[int, ...] = ()
    curve_samples: int = 32
    # Steps of the curve's runs (None: video_steps). Longer than the sweep's runs when the curve is to find
    # the sweep's length: a run's weights at step L do not depend on how far it goes (constant learning rate
    # after warm-up), so an L-step run is the first L steps of the curve's run (RunSpec.trajectory_key).
    curve_video_steps: int | None = None
    sample_prior: str = "mixed"
    eval_samples: int = 64  # generated clips per metric evaluation
    # How every evaluation and Fig. 6 sample (kind, steps, options); settings(..., sample_steps=N) sets steps
    sampler: SamplerSpec = SamplerSpec()
    # The real clips every metric compares with: "train" (the split the runs learn from) or "all" (train +
    # test: UCF-101's 13,320 videos, the paper's setting); UCF-101 clip starts are seeded by reference_seed.
    reference_split: str = "train"
    reference_seed: int = 0
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
    # Commit every run's evaluations as it lands (analysis.run_records), so a study of many CPU-hours loses
    # at most the run in progress with its machine; records_dir is set by notebook.start (``runs/`` beside
    # the notebook folders) or by `pyoco-lab reproduce --runs`.
    keep_records: bool = False
    records_dir: str | None = None
    # Render from the committed records only (`reproduce --from-records`): no run is trained or sampled;
    # a run without a record raises RunNotRecorded, or -- where a notebook allows it (the alpha sweep of a
    # study whose budget ended first) -- is left out and named as not run.
    records_only: bool = False
    # Table 5 beside equal compute: from scratch for the finetune's steps *plus* the image model's training
    # FLOPs in video steps (training.compute), one run per seed whose step-``video_steps`` checkpoint is the
    # ordinary from-scratch row (a prefix: RunSpec.trajectory_key).
    scratch_equal_compute: bool = False
    # overrides of image runs only, applied last (the recipe of the shipped image models, for other sizes)
    image_extra: dict[str, Any] = field(default_factory=dict)

    def train_overrides(self, phase: str) -> dict[str, Any]:
        """TrainConfig overrides common to every run of this preset (None = keep the train preset's)."""
        values = {
            "model": self.model,
            "batch_size": self.batch_size,
            "num_frames": self.num_frames,
            "resolution": self.resolution,
            "steps": self.image_steps if phase == "image" else self.video_steps,
            **self.train_extra,
            **(self.image_extra if phase == "image" else {}),
        }
        return {k: v for k, v in values.items() if v is not None}

    @property
    def sample_steps(self) -> int:
        """The sampler's steps (``sampler.steps``)."""
        return self.sampler.steps


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
        sampler=SamplerSpec("heun", 4),
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
        "2 CPU cores: the shipped tiny image model at 16x16, 8-frame clips of the embedded data, 100-step "
        "finetunes, one seed (bootstrap intervals over the clips)",
        "all eight notebooks < 20 minutes on 2 CPU cores, from a fresh clone",
        train_preset="quick",
        # 16 px: measured on this machine (2026-12-01) a 32 px video step costs 1.1 s and sampling 1 s per
        # clip, so quick's 12 runs did not fit 20 minutes at 32 px (~33 min); at 16 px a step is 0.3 s and
        # a clip 0.38 s. The image model: the 256k-image tiny model of issue #23's recipe search (its
        # samples name scenes where lab-tiny-16's 24k-image samples were textures; docs/pretrained.md).
        image_model="pretrained:lab-tiny-16-256k",
        resolution=16,
        video_steps=100,
        alphas=(0.0, 1.0, 2.0, INF),
        seeds=(0,),
        # One size only: a second one (lab-s: its image model and 3 runs, ~4.5 minutes) and Fig. 6's own
        # alpha = 10 run (~1.3 minutes) took a fresh-clone reproduce to ~23.5 minutes; cpu-long has 3 sizes.
        size_models=("tiny",),
        sample_alphas=(0.0, 1.0, INF),
        eval_samples=64,
        # the finetune-length curve (notebook 08) reads the checkpoints at 50 and 100 steps
        train_extra={"checkpoint_every": 50},
        curve_steps=(50, 100),
        curve_samples=64,
        # DEIS tAB order 3, 6 steps: 6 network calls per clip (Heun 8 needs 15; the stochastic 3kutta sampler
        # of A.3 needs 75 at 25 steps), the same sampler as cpu-long
        sampler=SamplerSpec("deis", 6),
        inversion_videos=16,
        inversion_frames=8,
        inversion_steps=24,
    ),
    # The lab's reference result for the paper's main claim (Fig. 7, Table 5, Fig. 8) on 2 CPU cores: sized
    # for two hours, measured 2 h 44 min of notebooks in 2026-12-01's run (figures/cpu-long/RUN.md; a
    # finetune + its N = 256 evaluation costs ~150 s here, not the ~100 s it was sized with). The claim is
    # about the prior, not the pixel count: 16x16 8-frame clips buy 3 seeds, the paper's alpha grid, three
    # model sizes and N = 256 clips per evaluation (2x the 128-dim FVD-lab features). The tiny model starts
    # from the shipped lab-tiny-16; the other two sizes' image models are pre-trained here with the same
    # recipe (image_extra).
    "cpu-long": Settings(
        "cpu-long",
        "2 CPU cores, ~2.7 hours: 16x16 8-frame clips, 3 seeds, alpha in {0, 0.5, 1, 2, 5, inf} for both "
        "priors + from scratch, 3 model sizes, metric controls, N = 256 clips per evaluation",
        "2 h 44 min of notebooks measured on 2 idle CPU cores (runs cached per folder: resumable, and "
        "runnable in parts)",
        train_preset="quick",
        image_model="pretrained:lab-tiny-16",
        resolution=16,
        image_steps=1500,
        # lab-tiny-16's recipe (pyoco_lab/weights/registry.json), for the sizes not shipped
        image_extra={"batch_size": 16, "lr": 1e-3, "warmup_steps": 500, "ema_decay": 0.9995},
        video_steps=200,
        alphas=(0.0, 0.5, 1.0, 2.0, 5.0, INF),
        seeds=(0, 1, 2),
        size_models=("lab-s", "tiny", "lab-m"),
        sample_alphas=(0.0, 1.0, 5.0),
        eval_samples=256,
        # DEIS tAB order 3, 6 steps: 6 network calls per clip (Heun 8 needs 15), so N = 256 fits the budget
        sampler=SamplerSpec("deis", 6),
        # checkpoints every 50 steps, all kept: the finetune-length curve reads them (notebook 08)
        train_extra={"checkpoint_every": 50, "keep_checkpoints": 4},
        curve_steps=(50, 100, 200),
        curve_samples=128,
        inversion_videos=16,
        inversion_frames=8,
        inversion_steps=24,
    ),
    # The lab's reference result at the resolution where frames are recognisable (issue #24; it replaces
    # cpu-long, whose committed run stays the record of the 16 px study). Many CPU-hours, so it is run in
    # parts: `pyoco-lab reproduce --preset cpu-32 --runs --hours 2.5` trains and evaluates run after run
    # (the finetune-length curve's first) and commits each evaluation to figures/cpu-32/runs/ as it lands;
    # `pyoco-lab reproduce --preset cpu-32` then renders the notebooks from those records.
    "cpu-32": Settings(
        "cpu-32",
        "2 CPU cores, many hours in parts: 32x32 8-frame clips finetuned from the shipped lab-tiny-32-256k, "
        "the finetune-length curve to 3000 steps, alpha in {0, 1, 2, 5, inf} for both priors + from scratch, "
        "3 seeds, metric controls, committed run records",
        "<= 16 CPU-hours in parts of <= 2.5 h (reproduce --runs --hours 2.5); the notebooks then render from "
        "the committed records in minutes",
        train_preset="quick",
        image_model="pretrained:lab-tiny-32-256k",
        resolution=32,
        # the finetune length from the curve (SUMMARY section 08, figures/cpu-32/RUN.md part 3): progressive
        # alpha = 2 was not within 2x real motion by 3,000 steps on any of 3 seeds, so the rule's cap
        video_steps=3000,
        alphas=(0.0, 1.0, 2.0, 5.0, INF),
        seeds=(0, 1, 2),
        confirm_seeds=(3, 4, 5),
        size_models=("tiny",),
        sample_alphas=(0.0, 1.0, INF),
        # Fig. 6 shows the shipped zoo (pretrained:zoo-32-highsigma-*): the study's recipe trained at higher
        # noise levels, the first recipe whose clips keep one scene (figures/levers/RUN.md parts 5-8)
        sample_extra={"p_mean": 0.5, "p_std": 1.4},
        eval_samples=128,
        sampler=SamplerSpec("deis", 6),
        # bf16 autocast: 1.4-1.9x per step on CPUs with native bf16 (docs/performance.md); pinned rather than
        # "auto" so a run's key names the arithmetic its committed record was made with
        train_extra={"checkpoint_every": 250, "keep_checkpoints": 12, "precision": "bf16"},
        # ... but the confirmation runs in fp32: the sweep's machines had native bf16, the one the
        # confirmation began on had not (bf16 emulated at 14 s per step against fp32's 1.2 s, RUN.md part 8).
        # Every confirmation run shares one arithmetic that every machine computes natively, so each
        # confirmatory claim compares runs made alike; the choice made on bf16 runs is what they test.
        confirm_extra={"precision": "fp32"},
        curve_priors=(("iid", 0.0), ("mixed", 1.0), ("progressive", 2.0)),
        # to 3,000 steps, the cap: in part 1 (seed 0) progressive alpha = 2 still moved 2.4-3.3x real
        # motion at every step to 2,000 (figures/cpu-32/RUN.md); the 2,000-step runs continue (prefixes)
        curve_video_steps=3000,
        curve_steps=(250, 500, 1000, 1500, 2000, 2500, 3000),
        curve_samples=128,  # = eval_samples: the sweep's runs are the curve's runs at the chosen length
        keep_records=True,
        scratch_equal_compute=True,
        inversion_videos=16,
        inversion_frames=8,
        inversion_steps=24,
    ),
    "standard": Settings(
        "standard",
        "one GPU: 64x64, 16-frame clips of the embedded data, the A.3 optimiser",
        "about one GPU hour of training, plus the notebooks' sampling and evaluation",
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
        sampler=UCF_SAMPLER,  # A.3 (stochastic DEIS 3kutta, 25 steps), the churn values are EDM's
        reference_split="all",  # "UCF-101 dataset contains 13,320 videos" (Section 5.1)
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
    known = {f.name for f in dataclasses.fields(Settings)} | {"sample_steps"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = {}
    for name, value in overrides.items():
        if value is None or name == "sample_steps":
            continue
        if name == "sampler":
            value = SamplerSpec.coerce(value)
        elif name == "curve_priors":
            value = tuple((str(kind), float(alpha)) for kind, alpha in value)
        elif isinstance(value, list):
            value = tuple(float(v) if name.endswith("alphas") else v for v in value)
        chosen[name] = value
    if overrides.get("sample_steps") is not None:  # the steps of the (possibly overridden) sampler
        sampler = chosen.get("sampler", SETTINGS[preset].sampler)
        chosen["sampler"] = replace(sampler, steps=int(overrides["sample_steps"]))
    return replace(SETTINGS[preset], **chosen)
