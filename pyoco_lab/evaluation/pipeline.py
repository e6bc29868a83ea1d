"""Evaluate a trained run: sample with its noise prior, score against real data, keep it in ``eval.json``.

One pipeline (:func:`evaluate`) for one value (:class:`~pyoco_lab.evaluation.keys.EvaluationRequest`):
check the device and every metric network before any sampling, load the EMA weights, sample, score,
record the settings, store under the request's key (``evaluation.keys``). What differs between a video
model and an image model (Table 5's "Image Diffusion" row) is the scorer:

* :class:`VideoScorer` -- clips: temporal statistics (frame-cosine, motion-energy, diversity); on the
  embedded data the lab metrics (FVD-lab, IS-lab, FD-frame-lab, FD-motion-lab) and the yardsticks
  (KID-app, C2ST, precision/recall, density/coverage, memorisation, scene-held); the paper's FVD (I3D),
  IS (C3D) and FID-frame (Inception) when their weight files are present, otherwise each is skipped with
  a message naming the missing file;
* :class:`ImageScorer` -- frames: FD-frame-lab and the frame yardsticks on the embedded data, FID-frame
  when Inception is present; FVD and IS need clips and are listed as skipped.

Each row is reported beside held-out real data (``real-test``, the floor a perfect model would reach with
this many samples) and, on the embedded data, train half B (``real-train``), all against the *train*
split (or "all": train + test, UCF-101's 13,320 videos) with clip starts seeded by ``reference_seed``
(``evaluation.references``). FVD is only named so on 16-frame clips (``FVD-<F>f`` otherwise) and every
other departure from the ``fvd2048_16f`` protocol is listed in ``settings.protocol``
(:func:`pyoco_lab.metrics.networks.protocol_record`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import torch

from pyoco_lab import devices, training
from pyoco_lab.evaluation.keys import EVAL_FILE, EvaluationKey, EvaluationRequest, read_store, store_entry
from pyoco_lab.evaluation.references import (
    embedded_clip_scores,
    real_datasets,
    reference_cache,
    reference_settings,
    subset_clips,
)
from pyoco_lab.metrics import appearance, lab, networks, yardsticks
from pyoco_lab.metrics.frechet import frechet_distance_from_features
from pyoco_lab.metrics.temporal import temporal_statistics
from pyoco_lab.sampling import sample_videos


@dataclasses.dataclass
class _Context:
    """What a scorer needs once the weights, the metric networks and the real data are known."""

    request: EvaluationRequest
    config: training.TrainConfig
    device: torch.device
    weights: Path
    checks: dict
    real_train: object
    progress: bool


def _sample(denoiser, ctx: _Context, num_classes: int, frames: int) -> torch.Tensor:
    """The request's samples, (N, frames, 3, H, W), drawn with the run's noise prior."""
    config, request = ctx.config, ctx.request
    return sample_videos(
        denoiser,
        config.prior,
        (frames, 3, config.resolution, config.resolution),
        request.num_samples,
        sampler=request.sampler,
        num_steps=request.num_steps,
        num_classes=num_classes,
        batch_size=request.batch_size,
        seed=request.seed,
        device=ctx.device,
        progress=ctx.progress,
        sampler_options=request.sampler_options,
    )


class VideoScorer:
    """A video model's samples: clips of the run's length, measured as clips."""

    kind = "video"

    @staticmethod
    def reusable(entry: dict) -> bool:
        return True

    @staticmethod
    def check_networks(weights: Path, config, device) -> tuple[dict, dict[str, str]]:
        """(checks of every literature network present, {file: sha256} of those this evaluation uses)."""
        checks = networks.check_detectors(
            weights, num_frames=config.num_frames, resolution=config.resolution, device=device
        )
        used = {path.name for _, path in networks.used_detectors(weights, config.num_frames)}
        return checks, {name: c.sha256 for name, c in checks.items() if name in used}

    @staticmethod
    def sample(denoiser, ctx: _Context, num_classes: int) -> torch.Tensor:
        return _sample(denoiser, ctx, num_classes, ctx.config.num_frames)

    @staticmethod
    def held_out(real_test, request: EvaluationRequest, frames: int) -> torch.Tensor:
        # The same number of held-out real clips as samples, so both rows carry the same small-N bias. Real
        # subsets follow reference_seed, not the sampling seed: every seed of a sweep meets the same clips.
        return subset_clips(real_test, request.num_samples, request.reference_seed)

    @staticmethod
    def score(generated: torch.Tensor, held_out: torch.Tensor, ctx: _Context) -> tuple[dict, int]:
        """({row: scores, "skipped": {metric: why}}, the number of real reference clips used)."""
        config, request, weights = ctx.config, ctx.request, ctx.weights
        results: dict = {
            "generated": temporal_statistics(generated, intervals=True),
            "real-test": temporal_statistics(held_out, intervals=True),
            "skipped": {},
        }
        if config.dataset == "embedded":
            rows = {"generated": generated, "real-test": held_out}
            scores = embedded_clip_scores(
                config, rows, request.num_samples, request.reference_seed, ctx.device, ctx.progress
            )
            for row, values in scores.items():
                results.setdefault(row, {}).update(values)
        else:
            for name in (*lab.LAB_METRIC_NAMES, *yardsticks.LOWER_IS_BETTER):
                results["skipped"][name] = (
                    f"{name} skipped: the lab's networks are trained on the embedded dataset only"
                )
        present = [spec for spec in networks.DETECTORS if spec.filename in ctx.checks]
        for spec in networks.DETECTORS:
            if spec not in present:
                results["skipped"][spec.metric] = networks.missing_message(spec, weights)
        num_real = min(request.max_real, len(ctx.real_train))
        if present:
            # Up to 2,048 real clips in memory (1.6 GB at 64 px, 16 frames): loaded only if a network's
            # reference statistics are not cached yet (per weights file, dataset, split, clip seed and count).
            cache, key = reference_cache(
                config, request.reference_split, request.reference_seed, num_real, config.num_frames
            )
            for row, clips in (("generated", generated), ("real-test", held_out)):
                values, skipped = networks.standard_metrics(
                    lambda: subset_clips(ctx.real_train, request.max_real, request.reference_seed),
                    clips,
                    directory=weights,
                    device=ctx.device,
                    batch_size=request.batch_size,
                    progress=ctx.progress,
                    reference_cache=cache,
                    reference_key=key,
                )
                results[row].update(values)
                results["skipped"].update(skipped)
        return results, num_real

    @staticmethod
    def settings(config, frames: int) -> dict:
        return {"num_frames": config.num_frames}

    @staticmethod
    def protocol_frames(config) -> int:
        return config.num_frames


class ImageScorer:
    """An image model's samples (Table 5's "Image Diffusion" row): single frames, measured as frames.

    Compared with the real frames of the reference split exactly as the video rows' frame metrics are:
    ``FD-frame-lab`` against the same lab-classifier frame features of the same real clips (clips of the
    request's ``num_frames``, default the video runs' length), ``FID-frame`` (Inception, when its file is
    present) against all frames of up to ``max_real`` real clips. ``real-test`` is the first
    ``num_samples`` frames of held-out test clips (the floor at that N).
    """

    kind = "image"
    NO_CLIPS = "an image model samples single frames"

    @staticmethod
    def reusable(entry: dict) -> bool:
        # entries stored before FD-frame-lab carried its interval are measured again rather than reused
        row = entry["generated"]
        return "FD-frame-lab" not in row or "FD-frame-lab-ci" in row

    @staticmethod
    def check_networks(weights: Path, config, device) -> tuple[dict, dict[str, str]]:
        checks = {}
        if (weights / networks.INCEPTION.filename).is_file():
            checks[networks.INCEPTION.filename] = networks.check_detector(
                networks.INCEPTION, weights, resolution=config.resolution, device=device
            )
        return checks, {name: c.sha256 for name, c in checks.items()}

    @staticmethod
    def sample(denoiser, ctx: _Context, num_classes: int) -> torch.Tensor:
        def image_denoiser(x, sigma, **cond):  # the image U-Net takes (B, C, H, W); samples are 1-frame clips
            return denoiser(x[:, 0], sigma, **cond)[:, None]

        return _sample(image_denoiser, ctx, num_classes, 1)[:, 0]  # the prior: i.i.d. for an image run

    @staticmethod
    def held_out(real_test, request: EvaluationRequest, frames: int) -> torch.Tensor:
        # All frames of just enough test clips, the first num_samples of them.
        clips = subset_clips(real_test, math.ceil(request.num_samples / frames), request.reference_seed)
        return clips.flatten(0, 1)[: request.num_samples]

    @classmethod
    def score(cls, images: torch.Tensor, held_out: torch.Tensor, ctx: _Context) -> tuple[dict, int]:
        config, request, device = ctx.config, ctx.request, ctx.device
        frames = int(request.num_frames or config.num_frames)
        results: dict = {
            "generated": {},
            "real-test": {},
            "skipped": {
                "FVD": f"FVD skipped: {cls.NO_CLIPS}, FVD needs clips",
                "IS": f"IS skipped: {cls.NO_CLIPS}, IS (C3D) needs 16-frame clips",
            },
        }
        if config.dataset == "embedded":
            classifier = lab.lab_classifier(
                config.resolution, frames, root=config.data_root, device=device, progress=ctx.progress
            )
            reference = lab.cached_lab_features(
                classifier, ctx.real_train, request.reference_split, progress=ctx.progress
            )
            for row, x in (("generated", images), ("real-test", held_out)):
                features = lab.lab_frame_features(classifier, x)
                results[row]["FD-frame-lab"] = lab.frame_distance(reference.frame, features)
                if row == "generated" and len(features) >= 2:  # the row's spread, as every video row has
                    results[row]["FD-frame-lab-ci"] = lab.frame_distance_interval(reference.frame, features)
            for name in ("FVD-lab", "IS-lab", "FD-motion-lab", "C2ST-clip"):
                results["skipped"][name] = f"{name} skipped: {cls.NO_CLIPS}, the lab's {name} needs clips"
            # The yardsticks (metrics.yardsticks): the same reference frames (train clips, half A) as the
            # video rows' content scores, and the real-train row (half B) as the floor.
            net = appearance.appearance_net(
                config.resolution, root=config.data_root, device=device, progress=ctx.progress
            )
            sets = yardsticks.real_sets(
                net, config.resolution, request.num_samples, root=config.data_root,
                seed=request.reference_seed,
            )  # fmt: skip
            results["real-train"] = {}
            for row, x in (("generated", images), ("real-test", held_out), ("real-train", sets.real)):
                results[row].update(yardsticks.frame_scores(sets, net, x, seed=request.reference_seed))
        else:
            for name in (*lab.LAB_METRIC_NAMES, *yardsticks.LOWER_IS_BETTER):
                results["skipped"][name] = (
                    f"{name} skipped: the lab classifier is trained on the embedded dataset only"
                )
        num_real = min(request.max_real, len(ctx.real_train))
        if ctx.checks:
            detector = networks.load_detector(networks.INCEPTION, ctx.weights, device)
            train_clips = subset_clips(ctx.real_train, request.max_real, request.reference_seed)
            num_real = len(train_clips)
            options = dict(batch_size=request.batch_size, progress=ctx.progress)
            ref = networks.inception_frame_features(detector, train_clips, **options)
            for row, x in (("generated", images), ("real-test", held_out)):
                fake = networks.inception_frame_features(detector, x[:, None], **options)
                results[row]["FID-frame"] = frechet_distance_from_features(ref, fake).distance
        else:
            results["skipped"]["FID-frame"] = networks.missing_message(networks.INCEPTION, ctx.weights)
        return results, num_real

    @staticmethod
    def settings(config, frames: int) -> dict:
        return {"kind": "image", "num_frames": frames}

    @staticmethod
    def protocol_frames(config) -> int:
        return networks.PROTOCOL_FRAMES  # frame metrics: the clip length of the protocol does not apply


SCORERS = {"video": VideoScorer, "image": ImageScorer}


def evaluate(
    request: EvaluationRequest, *, progress: bool = True, write: bool = True, reuse: bool = False
) -> dict:
    """Sample ``request.num_samples`` from its checkpoint's EMA weights and compute every available metric.

    Returns a JSON-ready dict ``{"settings", "generated", "real-test", "skipped"}`` (plus ``real-train`` on
    the embedded data) and, with ``write``, stores it in ``eval.json`` under the request's key (so
    checkpoints, samplers and sample counts accumulate instead of overwriting each other). With ``reuse``,
    an entry already stored under that key is returned without sampling. Before any sampling: the request
    and the device are checked, a broken ``eval.json`` is reported, and every literature weight file
    present is loaded, run once on a dummy input and hashed (:func:`networks.check_detectors`).
    """
    request.check()
    request = dataclasses.replace(request, device=devices.validate_device(request.device))
    plan = request.key()
    config, device = plan.config, request.device
    scorer = SCORERS[config.phase if config.phase == "image" else "video"]
    if scorer is VideoScorer and request.num_frames not in (None, config.num_frames):
        raise ValueError(
            f"num_frames={request.num_frames}: a video run is evaluated on its own clip length "
            f"({config.num_frames}); num_frames sets the real clips' length for image models only"
        )
    store = plan.run_dir / EVAL_FILE
    # A broken eval.json is reported now, not after hours of sampling.
    stored = read_store(store) if write or reuse else {}
    entry = stored.get(plan.key)
    if reuse and isinstance(entry, dict) and "generated" in entry and scorer.reusable(entry):
        return entry

    # Every metric network present must be the right one before any sampling (hours on a GPU at 2,048).
    weights = Path(request.weights_dir) if request.weights_dir is not None else networks.weights_dir()
    checks, used = scorer.check_networks(weights, config, device)
    plan = plan.with_metric_weights(used)
    # The folder, not the run: the weights loaded are the ones just hashed, even if training moves on.
    denoiser, _ = training.load_denoiser(plan.checkpoint, ema=True, device=device)
    frames = int(plan.parts["protocol"]["num_frames"])
    real_train, real_test = real_datasets(
        config, request.reference_split, reference_seed=request.reference_seed, num_frames=frames
    )
    num_classes = int(getattr(real_train, "num_classes", 0)) if config.class_conditional else 0
    ctx = _Context(request, config, device, weights, checks, real_train, progress)

    started = time.time()
    samples = scorer.sample(denoiser, ctx, num_classes)
    sampling_s = time.time() - started
    held_out = scorer.held_out(real_test, request, frames)
    results, num_real = scorer.score(samples, held_out, ctx)

    results["settings"] = {
        **_run_settings(plan, checks, device),
        **scorer.settings(config, frames),
        "num_samples": request.num_samples,
        "sampler": request.sampler,
        "num_steps": request.num_steps,
        "sampler_options": dict(request.sampler_options or {}),
        "seed": request.seed,
        "batch_size": request.batch_size,
        **reference_settings(
            request.reference_split, request.reference_seed, real_train, len(held_out), request.max_real
        ),
        "protocol": networks.protocol_record(
            num_frames=scorer.protocol_frames(config),
            num_generated=request.num_samples,
            num_real=num_real,
            resolution=config.resolution,
            dataset=config.dataset,
            reference_split=request.reference_split,
        ),
        "sampling_seconds": round(sampling_s, 2),
    }
    if write:
        store_entry(store, plan.key, results)
    return results


def evaluate_run(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 64,
    sampler: str = "heun",
    num_steps: int = 18,
    *,
    progress: bool = True,
    write: bool = True,
    reuse: bool = False,
    **request,
) -> dict:
    """:func:`evaluate` of a run, checkpoint or shipped model, its request given as keywords.

    What ``pyoco-lab evaluate`` and the notebooks call; the keywords are :class:`EvaluationRequest`'s
    fields (``batch_size``, ``seed``, ``device``, ``sampler_options``, ``reference_split``, ...). An
    image-phase run is evaluated as images (:class:`ImageScorer`).
    """
    return evaluate(
        EvaluationRequest(run_or_checkpoint, num_samples, sampler, num_steps, **request),
        progress=progress,
        write=write,
        reuse=reuse,
    )


def evaluate_image_run(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 256,
    sampler: str = "heun",
    num_steps: int = 18,
    **options,
) -> dict:
    """:func:`evaluate_run` of an image model (Table 5's "Image Diffusion" row); a video run is refused."""
    how = {name: options.pop(name) for name in ("progress", "write", "reuse") if name in options}
    request = EvaluationRequest(run_or_checkpoint, num_samples, sampler, num_steps, **options)
    request.check()
    if request.key().config.phase != "image":
        raise ValueError(f"{run_or_checkpoint} is a video run; evaluate it with evaluate_run")
    return evaluate(request, **how)


def _run_settings(plan: EvaluationKey, checks: dict, device: torch.device) -> dict:
    """What every evaluation's ``settings`` says about the weights, the run and the networks used."""
    config = plan.config
    return {
        "key": plan.key,
        "run": str(plan.run_dir),
        "checkpoint": str(plan.checkpoint),
        "checkpoint_step": plan.parts["checkpoint"]["step"],
        "ema_sha256": plan.parts["checkpoint"]["ema_sha256"],
        "phase": config.phase,
        "noise": config.noise,
        "alpha": config.alpha,
        "resolution": config.resolution,
        "dataset": config.dataset,
        "lab_classifier_version": lab.LAB_CLASSIFIER_VERSION,
        "metric_weights": {name: check.record() for name, check in checks.items()},
        "device": str(device),
    }
