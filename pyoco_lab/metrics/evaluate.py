"""Evaluate a trained video run: sample with its noise prior, score against real clips, save ``eval.json``.

``evaluate_run`` is what ``pyoco-lab evaluate`` and the notebooks call. For each run it reports, side by side,
the generated samples and held-out real clips (the floor a perfect model would reach with this many
samples), each against the *train* split the model learned from:

* lab metrics (embedded dataset only): FVD-lab, IS-lab, FD-frame-lab — a lab-internal ranking;
* the paper's metrics: FVD (I3D), IS (C3D), FID-frame (Inception) — only when their weight files are present,
  otherwise each is skipped with a message naming the missing file;
* temporal statistics (frame-cosine, motion-energy, diversity), which need no network.

The real clips come from ``reference_split`` ("train", or "all" = train + test: UCF-101's 13,320 videos) with
clip starts seeded by ``reference_seed`` (:func:`real_datasets`); FVD is only named so on 16-frame clips
(``FVD-<F>f`` otherwise) and every other departure from the ``fvd2048_16f`` protocol is listed in
``settings.protocol`` (:func:`networks.protocol_record`). An image model (Table 5's "Image Diffusion" row) is
scored on its frames: :func:`evaluate_image_run`.

``eval.json`` is a cache: each result is stored under :func:`evaluation_key`, which covers everything that
decides the numbers (the checkpoint's step and the sha256 of its EMA weights, the sampler and its options,
the sample count, seed, batch size and device type, the metric weight files' hashes and the protocol), so an
entry is reused (``reuse=True``, :func:`cached_evaluation`) only for the very same evaluation. The literature
weight files are checked (TorchScript, output width, sha256) before any sampling, and ``device`` is
validated first of all (:func:`validate_device`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from pathlib import Path

import torch

from pyoco_lab import devices, edm, training
from pyoco_lab.data import EmbeddedVideoDataset, UCF101Clips, default_data_root
from pyoco_lab.fileio import atomic_write_text, json_digest, read_json, sha256_file
from pyoco_lab.metrics import appearance, lab, networks, yardsticks
from pyoco_lab.metrics.frechet import frechet_distance_from_features
from pyoco_lab.metrics.temporal import temporal_statistics
from pyoco_lab.progress import tqdm
from pyoco_lab.reinit import Reinit, sample_reinit
from pyoco_lab.training.checkpoints import checkpoint_step

EVAL_FILE = "eval.json"
# Bump when the key's contents change: entries under older keys then simply stop matching (recomputed).
# 2: protocol holds phase, reference split and reference seed; 3: bootstrap *-ci intervals; 4: the yardsticks
# (appearance network, two-sample tests, ...) and one reference for every lab metric (train clips, half A)
KEY_FORMAT = 4
_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")


def validate_device(requested: str | torch.device) -> torch.device:
    """``auto`` (cuda if available, else cpu), ``cpu``, ``cuda`` or ``cuda:N`` → a usable device.

    Anything else raises ``ValueError`` naming the option and the fix, before anything is loaded.
    (``pyoco_lab.devices.resolve_device`` picks a rank's device under torchrun and lets ``gpu0`` or
    ``cuda:7`` on a one-GPU machine through to torch's own errors, hence this function.)
    """
    text = str(requested).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = _DEVICE.fullmatch(text)
    if match is None or (match[1] == "cpu" and match[2] not in (None, "0")):
        raise ValueError(f"--device {requested!r} is not a device; pass auto, cpu, cuda or cuda:N")
    if match[1] == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {requested!r}: CUDA is not available here; pass --device cpu (or auto)")
    count = torch.cuda.device_count()
    if match[2] is not None and int(match[2]) >= count:
        raise ValueError(
            f"--device {requested!r}: this machine has {count} CUDA device(s); "
            f"pass --device cuda:0 to cuda:{count - 1} (or auto)"
        )
    return torch.device(text)


def ema_sha256(checkpoint: str | os.PathLike) -> str:
    """sha256 of a checkpoint folder's EMA weights file (the weights ``evaluate_run`` samples with)."""
    return sha256_file(Path(checkpoint) / training.EMA_FILE)


@dataclasses.dataclass(frozen=True)
class EvaluationKey:
    """Where an evaluation lives in ``eval.json``: ``key`` (readable prefix + hash of ``parts``).

    ``checkpoint`` is the checkpoint folder loaded (or the ``pretrained:NAME`` of a shipped model),
    ``run_dir`` the folder whose ``eval.json`` holds the entry (the run's, or ``store_dir``).
    """

    key: str
    parts: dict
    checkpoint: Path | str
    run_dir: Path
    config: training.TrainConfig
    device: torch.device

    def with_metric_weights(self, hashes: dict[str, str]) -> EvaluationKey:
        """The same key with these weight-file hashes ({file name: sha256}), e.g. of files just checked."""
        parts = {**self.parts, "metric_weights": dict(sorted(hashes.items()))}
        return dataclasses.replace(self, key=key_name(parts), parts=parts)


REFERENCE_SPLITS = ("train", "all")


def _resolve_source(source, store_dir) -> tuple[dict, Path | str, Path, training.TrainConfig]:
    """(checkpoint record, what to load, eval.json's folder, config) of a run, checkpoint or shipped model."""
    if training.pretrained.is_pretrained(source):
        model = training.pretrained.get(str(source))
        if store_dir is None:
            raise ValueError(
                f"{source} is a model shipped with the lab and has no run folder; pass store_dir= "
                "(the folder whose eval.json keeps its evaluations)"
            )
        record = {"step": None, "pretrained": model.name, "ema_sha256": model.sha256}
        return record, f"{training.pretrained.PREFIX}{model.name}", Path(store_dir), model.train_config
    checkpoint, run_dir = training.resolve_checkpoint(source)
    record = {"step": _checkpoint_step(checkpoint), "ema_sha256": ema_sha256(checkpoint)}
    folder = Path(store_dir) if store_dir is not None else run_dir
    return record, checkpoint, folder, training.load_config(run_dir)


def _used_weights(weights: Path, config: training.TrainConfig, num_frames: int) -> list:
    """The literature networks an evaluation uses: all present ones for videos, Inception for images."""
    used = networks.used_detectors(weights, num_frames)
    if config.phase == "image":
        used = [(spec, path) for spec, path in used if spec.metric == "FID-frame"]
    return used


def evaluation_parts(
    config: training.TrainConfig,
    checkpoint: dict,
    num_samples: int,
    sampler: str,
    num_steps: int,
    *,
    batch_size: int = 16,
    seed: int = 0,
    device: str | torch.device = "auto",
    weights_dir: str | os.PathLike | None = None,
    max_real: int = 2048,
    sampler_options: dict | None = None,
    reference_split: str = "train",
    reference_seed: int = 0,
    num_frames: int | None = None,
) -> dict:
    """Everything that decides an evaluation's numbers (what :func:`evaluation_key` hashes), from the run's
    config and a ``checkpoint`` record; needs no run folder, so a committed result can be matched before
    its run exists on this machine (``analysis.run_records``)."""
    if reference_split not in REFERENCE_SPLITS:
        raise ValueError(
            f"reference_split must be 'train' (trainlist01 / the embedded train split) or 'all' "
            f"(train + test: UCF-101's 13,320 videos), got {reference_split!r}"
        )
    device = validate_device(device)
    frames = int(num_frames or config.num_frames)
    weights = Path(weights_dir) if weights_dir is not None else networks.weights_dir()
    used = {path.name: sha256_file(path) for _, path in _used_weights(weights, config, frames)}
    return {
        "format": KEY_FORMAT,
        "checkpoint": checkpoint,
        "sampler": sampler,
        "num_steps": int(num_steps),
        "sampler_options": _canonical(sampler_options or {}),
        "num_samples": int(num_samples),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "device_type": device.type,
        "metric_weights": used,
        "protocol": {
            "dataset": config.dataset,
            "phase": config.phase,
            "reference_split": reference_split,
            "reference_seed": int(reference_seed),
            "test_split": "test",
            "resolution": config.resolution,
            "num_frames": frames,
            "noise": config.noise,
            "alpha": _canonical(config.alpha),
            "class_conditional": config.class_conditional,
            "lab_classifier_version": lab.LAB_CLASSIFIER_VERSION if config.dataset == "embedded" else None,
            "yardsticks": [appearance.APPEARANCE_VERSION, yardsticks.YARDSTICKS_VERSION]
            if config.dataset == "embedded"
            else None,
            "max_real": int(max_real),
        },
    }


def evaluation_key(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 64,
    sampler: str = "heun",
    num_steps: int = 18,
    *,
    batch_size: int = 16,
    seed: int = 0,
    device: str | torch.device = "auto",
    weights_dir: str | os.PathLike | None = None,
    max_real: int = 2048,
    sampler_options: dict | None = None,
    reference_split: str = "train",
    reference_seed: int = 0,
    num_frames: int | None = None,
    store_dir: str | os.PathLike | None = None,
) -> EvaluationKey:
    """The ``eval.json`` key of this evaluation, e.g. ``heun-18steps-n64-seed0-step0000300-3f2a9c0b71de``.

    The readable part names the sampler, steps, sample count, seed and checkpoint step (``image-`` first for
    an image model); the 12 hex digits hash everything that decides the numbers (:attr:`EvaluationKey.parts`):
    the checkpoint (step, sha256 of its ``ema.safetensors``; name and sha256 of a ``pretrained:NAME`` model),
    the sampler options, the batch size (the mixed prior's noise is drawn batch by batch, so other batches
    give other samples), the device type (the stochastic sampler draws its churn noise there; CUDA rounds
    differently), the sha256 of each literature weight file that will be used, and the protocol (dataset,
    phase, reference split and the seed of its clips, resolution, frames, noise prior, lab classifier
    version, max_real). ``num_frames`` (image models only) is the clip length of the real reference and lab
    classifier (default: the config's). Nothing is loaded but ``config.json`` and the hashed files.
    """
    record, checkpoint, run_dir, config = _resolve_source(run_or_checkpoint, store_dir)
    device = validate_device(device)
    parts = evaluation_parts(
        config,
        record,
        num_samples,
        sampler,
        num_steps,
        batch_size=batch_size,
        seed=seed,
        device=device,
        weights_dir=weights_dir,
        max_real=max_real,
        sampler_options=sampler_options,
        reference_split=reference_split,
        reference_seed=reference_seed,
        num_frames=num_frames,
    )
    return EvaluationKey(key_name(parts), parts, checkpoint, run_dir, config, device)


def key_name(parts: dict) -> str:
    """Readable prefix (sampler, steps, N, seed, checkpoint step) + 12 hex of the hash of all ``parts``."""
    digest = json_digest(parts, 12)
    checkpoint = parts["checkpoint"]
    step = checkpoint["step"]
    if checkpoint.get("pretrained"):
        step_name = f"pretrained-{checkpoint['pretrained']}"
    else:
        step_name = f"step{step:07d}" if step is not None else "stepNA"
    prefix = "image-" if parts["protocol"].get("phase") == "image" else ""
    return (
        f"{prefix}{parts['sampler']}-{parts['num_steps']}steps-n{parts['num_samples']}-seed{parts['seed']}-"
        f"{step_name}-{digest}"
    )


def cached_evaluation(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 64,
    sampler: str = "heun",
    num_steps: int = 18,
    **options,
) -> dict | None:
    """The stored result of exactly this evaluation (same arguments as ``evaluate_run``), or None.

    Hashes the checkpoint's EMA weights and the metric weight files to build :func:`evaluation_key`; samples
    nothing. Entries under other keys (other checkpoints, settings, or older key formats) never match.
    """
    for unused in ("progress", "write", "reuse"):  # accepted so evaluate_run's arguments can be passed as is
        options.pop(unused, None)
    key = evaluation_key(run_or_checkpoint, num_samples, sampler, num_steps, **options)
    entry = _read_store(key.run_dir / EVAL_FILE).get(key.key)
    return entry if isinstance(entry, dict) and "generated" in entry else None


@torch.no_grad()
def sample_videos(
    denoiser,
    prior,
    shape: tuple[int, int, int, int],
    num_samples: int,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    num_classes: int = 0,
    batch_size: int = 16,
    seed: int = 0,
    device=None,
    progress: bool = True,
    sampler_options: dict | None = None,
    reinit: Reinit | None = None,
) -> torch.Tensor:
    """``num_samples`` videos (N, F, C, H, W) in [−1, 1] on CPU, drawn batch by batch with ``prior``'s noise.

    ``shape`` is (F, C, H, W). Class-conditional models get balanced labels (sample i has class i mod K).
    The stochastic sampler's fresh noise follows the same prior. Seeded: the same call gives the same videos.
    ``sampler_options`` go to :func:`pyoco_lab.edm.sample` (e.g. ``s_churn``/``step`` for "stochastic",
    ``order``/``variant`` for "deis"). With ``reinit``, each batch is re-initialised in the low band
    (:func:`pyoco_lab.reinit.sample_reinit`, FreeInit / FreqPrior) with fresh noise of ``prior`` from a stream
    of its own, so the first pass is the plain sample of the same seed.
    """
    # On the denoiser's device unless told otherwise (devices: one rule), TF32 / cuDNN autotuning on CUDA.
    device = devices.device_of(denoiser) if device is None else torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    # Churn noise of the stochastic sampler is drawn where x lives, from its own seeded stream.
    churn = torch.Generator(device=device).manual_seed(seed + 1)
    fresh = torch.Generator().manual_seed(seed + 2)  # re-initialisation's high band
    out = []
    # Progress per sampler step (a batch of a large model takes minutes); per batch when re-initialising.
    batches = range(0, num_samples, batch_size)
    per_step = reinit is None
    bar = tqdm(
        total=len(batches) * (num_steps if per_step else 1),
        desc="sampling",
        unit="step" if per_step else "batch",
        disable=not progress,
    )
    for start in batches:
        n = min(batch_size, num_samples - start)
        noise = prior.sample((n, *shape), generator=generator).to(device)
        labels = (torch.arange(start, start + n) % num_classes).to(device) if num_classes else None
        cond = {"class_labels": labels} if labels is not None else {}
        options = dict(sampler_options or {})
        if sampler == "stochastic":
            options["noise_sampler"] = edm.prior_noise_sampler(prior, generator=churn)
        denoise = lambda x, s, cond=cond: denoiser(x, s, **cond)  # noqa: E731
        with devices.sampling_mode(device):
            if per_step:
                step_done = lambda i, x: bar.update(1)  # noqa: E731
                x0 = edm.sample(
                    denoise, noise, sampler=sampler, num_steps=num_steps, callback=step_done, **options
                )
            else:
                x0 = sample_reinit(
                    denoise,
                    noise,
                    lambda n=n: prior.sample((n, *shape), generator=fresh),
                    reinit,
                    sampler=sampler,
                    num_steps=num_steps,
                    **options,
                )
            if not per_step:
                bar.update(1)
        out.append(x0.float().clamp(-1, 1).cpu())
    bar.close()
    return torch.cat(out)


def real_datasets(
    config: training.TrainConfig,
    reference_split: str = "train",
    *,
    reference_seed: int = 0,
    num_frames: int | None = None,
):
    """(reference clips, held-out test clips) of a run's dataset: what every metric compares against.

    ``reference_split`` is "train" (the split the model learned from: the embedded train split, UCF-101's
    trainlist01) or "all" (train + test: UCF-101's 13,320 videos, the paper's setting). UCF-101 clip starts
    are seeded by ``reference_seed`` and each video's path (``UCF101Clips(seed=...)``), so the real set is
    the same on every machine and every call; the embedded clips are fixed arrays.
    """
    frames = int(num_frames or config.num_frames)
    if config.dataset == "embedded":
        reference = EmbeddedVideoDataset(config.data_root, config.resolution, reference_split, frames)
        test = EmbeddedVideoDataset(config.data_root, config.resolution, "test", frames)
    else:
        options = dict(
            root=config.data_root, resolution=config.resolution, num_frames=frames, seed=reference_seed
        )
        reference = UCF101Clips(split=reference_split, **options)
        test = UCF101Clips(split="test", **options)
    return reference, test


def embedded_clip_scores(
    config: training.TrainConfig,
    rows: dict[str, torch.Tensor],
    num_samples: int,
    reference_seed: int,
    device,
    progress: bool,
) -> dict[str, dict]:
    """Lab metrics and yardsticks of each row's clips (embedded data), plus the ``real-train`` row.

    Every row is measured against the same reference, half A of the train clips (``yardsticks.real_sets``,
    seeded by ``reference_seed``): the lab classifier's FVD-lab / FD-frame-lab / FD-motion-lab / IS-lab, and
    the appearance yardsticks (content KID-app, C2ST-frame, C2ST-clip, precision/recall, density/coverage,
    memorisation). ``real-train`` is ``num_samples`` clips of the other half B: the floor a perfect model
    of the training data reaches at this N (``real-test``, the held-out scenes, is generalisation).
    """
    classifier = lab.lab_classifier(
        config.resolution, config.num_frames, root=config.data_root, device=device, progress=progress
    )
    net = appearance.appearance_net(
        config.resolution, root=config.data_root, device=device, progress=progress
    )
    sets = yardsticks.real_sets(
        net,
        config.resolution,
        num_samples,
        num_frames=config.num_frames,
        root=config.data_root,
        seed=reference_seed,
    )
    reference = lab.lab_features(classifier, sets.reference_clips)
    scene = yardsticks.scene_reference(sets, net)
    # The real rows are the same for every run of a sweep (same data, N, seed and networks): measured once.
    cache = _real_rows_cache(config, num_samples, reference_seed, classifier, net)
    stored = read_json(cache, "real-rows cache") if cache.is_file() else {}
    # A real row stored before scene consistency was measured is measured again (the same numbers, plus it).
    stored = {name: row for name, row in stored.items() if "scene-held" in row}
    out = {}
    for name, clips in {**rows, "real-train": sets.real}.items():
        if name in REAL_ROWS and name in stored:
            out[name] = stored[name]
            continue
        row = temporal_statistics(clips, intervals=True) if name == "real-train" else {}
        row.update(lab.lab_metrics(reference, lab.lab_features(classifier, clips)))
        row.update(yardsticks.clip_scores(sets, net, clips, seed=reference_seed, scene=scene))
        out[name] = row
    if any(name in REAL_ROWS and name not in stored for name in out):
        atomic_write_text(cache, json.dumps({k: v for k, v in out.items() if k in REAL_ROWS}))
    return out


REAL_ROWS = ("real-test", "real-train")


def _real_rows_cache(config, num_samples, reference_seed, classifier, net) -> Path:
    """Where the real rows of an embedded evaluation are kept: keyed by everything that decides them."""
    parts = {
        "format": KEY_FORMAT,
        "data_root": str(Path(config.data_root or default_data_root()).resolve()),
        "resolution": config.resolution,
        "num_frames": config.num_frames,
        "num_samples": int(num_samples),
        "reference_seed": int(reference_seed),
        "networks": [networks.weights_sha256(m) for m in (classifier, net)],
        "bootstrap_resamples": lab.BOOTSTRAP_RESAMPLES,
        "yardsticks": yardsticks.YARDSTICKS_VERSION,
    }
    digest = json_digest(parts, 16)
    return Path(config.data_root or default_data_root()) / "cache" / "real-rows" / f"{digest}.json"


def _check_arguments(num_samples: int, sampler: str) -> None:
    if num_samples < 2:
        raise ValueError(
            f"--num-samples must be at least 2 (Fréchet distances need a covariance), got {num_samples}"
        )
    if sampler not in edm.SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(edm.SAMPLERS)}")


def evaluate_run(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 64,
    sampler: str = "heun",
    num_steps: int = 18,
    *,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
    weights_dir: str | os.PathLike | None = None,
    max_real: int = 2048,
    progress: bool = True,
    write: bool = True,
    sampler_options: dict | None = None,
    reuse: bool = False,
    reference_split: str = "train",
    reference_seed: int = 0,
    store_dir: str | os.PathLike | None = None,
) -> dict:
    """Sample ``num_samples`` videos from the EMA weights of a checkpoint and compute every available metric.

    ``run_or_checkpoint`` is a run folder (its newest checkpoint) or one checkpoint folder. Returns a
    JSON-ready dict ``{"settings", "generated", "real-test", "skipped"}`` and, with ``write``, stores it in
    ``<run>/eval.json`` under :func:`evaluation_key` (so checkpoints, samplers and sample counts accumulate
    instead of overwriting each other). With ``reuse``, an entry already stored under that key is returned
    without sampling. Before any sampling: the device is validated, and every literature weight file present
    is loaded, run once on a dummy clip and hashed (:func:`networks.check_detectors`).

    Real clips come from ``reference_split`` ("train", or "all" = train + test) with clip starts seeded by
    ``reference_seed`` (:func:`real_datasets`); both are recorded in ``settings`` and in the key, and so is
    how the evaluation departs from the literature's protocol (``settings.protocol``,
    :func:`networks.protocol_record`). An image-phase run (or ``pretrained:NAME``, with ``store_dir``) is
    evaluated as images instead: :func:`evaluate_image_run`.
    """
    _check_arguments(num_samples, sampler)
    device = validate_device(device)
    options = dict(
        batch_size=batch_size,
        seed=seed,
        device=device,
        weights_dir=weights_dir,
        max_real=max_real,
        sampler_options=sampler_options,
        reference_split=reference_split,
        reference_seed=reference_seed,
        store_dir=store_dir,
    )
    plan = evaluation_key(run_or_checkpoint, num_samples, sampler, num_steps, **options)
    if plan.config.phase == "image":
        return evaluate_image_run(
            run_or_checkpoint,
            num_samples,
            sampler,
            num_steps,
            progress=progress,
            write=write,
            reuse=reuse,
            **options,
        )
    config, run_dir, checkpoint = plan.config, plan.run_dir, plan.checkpoint
    store = run_dir / EVAL_FILE
    # A broken eval.json is reported now, not after hours of sampling.
    stored = _read_store(store) if write or reuse else {}
    if reuse and isinstance(stored.get(plan.key), dict) and "generated" in stored[plan.key]:
        return stored[plan.key]

    # Every metric network present must be the right one before any sampling (hours on a GPU at 2,048).
    weights = Path(weights_dir) if weights_dir is not None else networks.weights_dir()
    checks = networks.check_detectors(
        weights, num_frames=config.num_frames, resolution=config.resolution, device=device
    )
    used = {path.name for _, path in networks.used_detectors(weights, config.num_frames)}
    plan = plan.with_metric_weights({name: c.sha256 for name, c in checks.items() if name in used})
    # The folder, not the run: the weights loaded are the ones just hashed, even if training moves on.
    denoiser, _ = training.load_denoiser(checkpoint, ema=True, device=device)
    real_train, real_test = real_datasets(config, reference_split, reference_seed=reference_seed)
    num_classes = int(getattr(real_train, "num_classes", 0)) if config.class_conditional else 0

    started = time.time()
    generated = sample_videos(
        denoiser,
        config.prior,
        (config.num_frames, 3, config.resolution, config.resolution),
        num_samples,
        sampler=sampler,
        num_steps=num_steps,
        num_classes=num_classes,
        batch_size=batch_size,
        seed=seed,
        device=device,
        progress=progress,
        sampler_options=sampler_options,
    )
    sampling_s = time.time() - started
    # The same number of held-out real clips as samples, so both rows carry the same small-N bias. Real
    # subsets follow reference_seed, not the sampling seed: every seed of a sweep meets the same real clips.
    test_clips = subset_clips(real_test, num_samples, reference_seed)
    results: dict = {
        "generated": temporal_statistics(generated, intervals=True),
        "real-test": temporal_statistics(test_clips, intervals=True),
        "skipped": {},
    }

    if config.dataset == "embedded":
        rows = {"generated": generated, "real-test": test_clips}
        for row, values in embedded_clip_scores(
            config, rows, num_samples, reference_seed, device, progress
        ).items():
            results.setdefault(row, {}).update(values)
    else:
        for name in (*lab.LAB_METRIC_NAMES, *yardsticks.LOWER_IS_BETTER):
            results["skipped"][name] = (
                f"{name} skipped: the lab's networks are trained on the embedded dataset only"
            )

    present = [spec for spec in networks.DETECTORS if spec.filename in checks]
    for spec in networks.DETECTORS:
        if spec not in present:
            results["skipped"][spec.metric] = networks.missing_message(spec, weights)
    num_real = min(max_real, len(real_train))
    if present:
        # Up to 2,048 real clips in memory (1.6 GB at 64 px, 16 frames): loaded only if a network's reference
        # statistics are not cached yet (per weights file, dataset, split, clip seed and count).
        cache, key = _reference_cache(config, reference_split, reference_seed, num_real, config.num_frames)
        for row, clips in (("generated", generated), ("real-test", test_clips)):
            values, skipped = networks.standard_metrics(
                lambda: subset_clips(real_train, max_real, reference_seed),
                clips,
                directory=weights,
                device=device,
                batch_size=batch_size,
                progress=progress,
                reference_cache=cache,
                reference_key=key,
            )
            results[row].update(values)
            results["skipped"].update(skipped)

    results["settings"] = {
        **_common_settings(plan, run_dir, checkpoint, config, checks, device),
        "num_samples": num_samples,
        "sampler": sampler,
        "num_steps": num_steps,
        "sampler_options": dict(sampler_options or {}),
        "seed": seed,
        "batch_size": batch_size,
        "num_frames": config.num_frames,
        **_reference_settings(reference_split, reference_seed, real_train, len(test_clips), max_real),
        "protocol": networks.protocol_record(
            num_frames=config.num_frames,
            num_generated=num_samples,
            num_real=num_real,
            resolution=config.resolution,
            dataset=config.dataset,
            reference_split=reference_split,
        ),
        "sampling_seconds": round(sampling_s, 2),
    }
    if write:
        _store(store, plan.key, results)
    return results


def evaluate_image_run(
    run_or_checkpoint: str | os.PathLike,
    num_samples: int = 256,
    sampler: str = "heun",
    num_steps: int = 18,
    *,
    num_frames: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
    weights_dir: str | os.PathLike | None = None,
    max_real: int = 2048,
    progress: bool = True,
    write: bool = True,
    sampler_options: dict | None = None,
    reuse: bool = False,
    reference_split: str = "train",
    reference_seed: int = 0,
    store_dir: str | os.PathLike | None = None,
) -> dict:
    """Table 5's "Image Diffusion" row: frame-level scores of an image model's samples, cached like videos.

    Samples ``num_samples`` images from the EMA weights (i.i.d. noise, the stochastic sampler's churn too)
    and compares them with the real frames of ``reference_split``, exactly as the video rows' frame metrics
    do: ``FD-frame-lab`` against the same lab-classifier frame features of the same real clips (embedded
    data; clips of ``num_frames``, default the config's, i.e. the video runs' length), and ``FID-frame``
    (Inception, when its file is present) against all frames of up to ``max_real`` real clips. The
    ``real-test`` row is the first ``num_samples`` frames of held-out test clips (the floor at that N).
    FVD and IS need clips: they are listed as skipped. ``run_or_checkpoint`` is an image run, checkpoint,
    or ``pretrained:NAME`` (then ``store_dir`` holds its ``eval.json``).
    """
    _check_arguments(num_samples, sampler)
    device = validate_device(device)
    plan = evaluation_key(
        run_or_checkpoint,
        num_samples,
        sampler,
        num_steps,
        batch_size=batch_size,
        seed=seed,
        device=device,
        weights_dir=weights_dir,
        max_real=max_real,
        sampler_options=sampler_options,
        reference_split=reference_split,
        reference_seed=reference_seed,
        num_frames=num_frames,
        store_dir=store_dir,
    )
    config, run_dir, checkpoint = plan.config, plan.run_dir, plan.checkpoint
    if config.phase != "image":
        raise ValueError(f"{run_or_checkpoint} is a video run; evaluate it with evaluate_run")
    frames = int(plan.parts["protocol"]["num_frames"])
    store = run_dir / EVAL_FILE
    stored = _read_store(store) if write or reuse else {}
    entry = stored.get(plan.key)
    # entries stored before FD-frame-lab carried its interval are measured again rather than reused
    if reuse and isinstance(entry, dict) and "generated" in entry and _has_intervals(entry["generated"]):
        return entry

    weights = Path(weights_dir) if weights_dir is not None else networks.weights_dir()
    checks = {}
    if (weights / networks.INCEPTION.filename).is_file():
        checks[networks.INCEPTION.filename] = networks.check_detector(
            networks.INCEPTION, weights, resolution=config.resolution, device=device
        )
    plan = plan.with_metric_weights({name: c.sha256 for name, c in checks.items()})
    denoiser, _ = training.load_denoiser(checkpoint, ema=True, device=device)
    real_train, real_test = real_datasets(
        config, reference_split, reference_seed=reference_seed, num_frames=frames
    )
    num_classes = int(getattr(real_train, "num_classes", 0)) if config.class_conditional else 0

    def image_denoiser(x, sigma, **cond):  # the image U-Net takes (B, C, H, W); samples are 1-frame clips
        return denoiser(x[:, 0], sigma, **cond)[:, None]

    started = time.time()
    images = sample_videos(
        image_denoiser,
        config.prior,  # i.i.d. for an image run
        (1, 3, config.resolution, config.resolution),
        num_samples,
        sampler=sampler,
        num_steps=num_steps,
        num_classes=num_classes,
        batch_size=batch_size,
        seed=seed,
        device=device,
        progress=progress,
        sampler_options=sampler_options,
    )[:, 0]
    sampling_s = time.time() - started
    # Held-out frames: all frames of just enough test clips, the first num_samples of them.
    test_frames = subset_clips(real_test, math.ceil(num_samples / frames), reference_seed).flatten(0, 1)
    test_frames = test_frames[:num_samples]
    no_clips = "an image model samples single frames"
    results: dict = {
        "generated": {},
        "real-test": {},
        "skipped": {
            "FVD": f"FVD skipped: {no_clips}, FVD needs clips",
            "IS": f"IS skipped: {no_clips}, IS (C3D) needs 16-frame clips",
        },
    }
    if config.dataset == "embedded":
        classifier = lab.lab_classifier(
            config.resolution, frames, root=config.data_root, device=device, progress=progress
        )
        reference = lab.cached_lab_features(classifier, real_train, reference_split, progress=progress)
        for row, x in (("generated", images), ("real-test", test_frames)):
            features = lab.lab_frame_features(classifier, x)
            results[row]["FD-frame-lab"] = lab.frame_distance(reference.frame, features)
            if row == "generated" and len(features) >= 2:  # the row's spread, as every video row has
                results[row]["FD-frame-lab-ci"] = lab.frame_distance_interval(reference.frame, features)
        for name in ("FVD-lab", "IS-lab", "FD-motion-lab", "C2ST-clip"):
            results["skipped"][name] = f"{name} skipped: {no_clips}, the lab's {name} needs clips"
        # The yardsticks (metrics.yardsticks): the same reference frames (train clips, half A) as the video
        # rows' content scores, and the real-train row (half B) as the floor.
        net = appearance.appearance_net(
            config.resolution, root=config.data_root, device=device, progress=progress
        )
        sets = yardsticks.real_sets(
            net, config.resolution, num_samples, root=config.data_root, seed=reference_seed
        )
        results["real-train"] = {}
        for row, x in (("generated", images), ("real-test", test_frames), ("real-train", sets.real)):
            results[row].update(yardsticks.frame_scores(sets, net, x, seed=reference_seed))
    else:
        for name in (*lab.LAB_METRIC_NAMES, *yardsticks.LOWER_IS_BETTER):
            results["skipped"][name] = (
                f"{name} skipped: the lab classifier is trained on the embedded dataset only"
            )
    num_real = min(max_real, len(real_train))
    if checks:
        detector = networks.load_detector(networks.INCEPTION, weights, device)
        train_clips = subset_clips(real_train, max_real, reference_seed)
        num_real = len(train_clips)
        options = dict(batch_size=batch_size, progress=progress)
        ref = networks.inception_frame_features(detector, train_clips, **options)
        for row, x in (("generated", images), ("real-test", test_frames)):
            fake = networks.inception_frame_features(detector, x[:, None], **options)
            results[row]["FID-frame"] = frechet_distance_from_features(ref, fake).distance
    else:
        results["skipped"]["FID-frame"] = networks.missing_message(networks.INCEPTION, weights)

    results["settings"] = {
        **_common_settings(plan, run_dir, checkpoint, config, checks, device),
        "kind": "image",
        "num_samples": num_samples,
        "sampler": sampler,
        "num_steps": num_steps,
        "sampler_options": dict(sampler_options or {}),
        "seed": seed,
        "batch_size": batch_size,
        "num_frames": frames,
        **_reference_settings(reference_split, reference_seed, real_train, len(test_frames), max_real),
        "protocol": networks.protocol_record(
            num_frames=networks.PROTOCOL_FRAMES,  # frame metrics: the clip length does not apply
            num_generated=num_samples,
            num_real=num_real,
            resolution=config.resolution,
            dataset=config.dataset,
            reference_split=reference_split,
        ),
        "sampling_seconds": round(sampling_s, 2),
    }
    if write:
        _store(store, plan.key, results)
    return results


def _has_intervals(row: dict) -> bool:
    """Whether a stored image-evaluation row carries the bootstrap interval of its FD-frame-lab."""
    return "FD-frame-lab" not in row or "FD-frame-lab-ci" in row


def _common_settings(plan: EvaluationKey, run_dir, checkpoint, config, checks, device) -> dict:
    return {
        "key": plan.key,
        "run": str(run_dir),
        "checkpoint": str(checkpoint),
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


def _reference_cache(config, split: str, seed: int, count: int, num_frames: int) -> tuple[Path, dict]:
    """Where the literature networks' real-set statistics are cached, and what decides them."""
    root = Path(config.data_root) if config.data_root else default_data_root()
    key = {
        "format": KEY_FORMAT,
        "dataset": config.dataset,
        "data_root": str(root.resolve()),
        "split": split,
        "clip_seed": int(seed),
        "resolution": config.resolution,
        "num_frames": int(num_frames),
        "count": int(count),
    }
    return root / "cache" / "reference-stats", key


def _reference_settings(
    reference_split: str, reference_seed: int, real_train, num_test: int, max_real
) -> dict:
    return {
        "reference_split": reference_split,
        "reference_seed": int(reference_seed),
        "num_real_reference": len(real_train),
        "num_real_test": num_test,
        # with "all" the held-out clips are inside the reference set: the real row is not held out then
        "real_test_in_reference": reference_split == "all",
        "max_real": max_real,
    }


def format_table(results: dict) -> str:
    """The evaluation as a plain-text table (metrics × {generated, real train-half-B floor, held-out scenes})
    plus skip messages. Measures with a 95% interval print it beside the value."""
    other_lengths = sorted(n for n in results["generated"] if re.fullmatch(r"FVD-\d+f", n))
    rows = (
        "KID-app",
        "C2ST-frame",
        "C2ST-clip",
        "scene-held",
        "cut-rate",
        "FD-motion-lab",
        "precision-app",
        "recall-app",
        "density-app",
        "coverage-app",
        "NN-ratio",
        "copy-fraction",
        "FVD-lab",
        "IS-lab",
        "FD-frame-lab",
        "FVD",
        *other_lengths,
        "IS",
        "FID-frame",
        "frame-cosine",
        "motion-energy",
        "diversity",
    )
    columns = [c for c in ("generated", "real-train", "real-test") if c in results]
    titles = {"generated": "generated", "real-train": "real (train)", "real-test": "held-out scenes"}
    width = 28
    lines = [
        f"{'metric':<15}" + "".join(f"{titles[c]:>{width}}" for c in columns),
        "-" * (15 + width * len(columns)),
    ]
    for name in rows:
        if name not in results["generated"]:
            continue
        cells = [_cell(results[c], name) for c in columns]
        lines.append(f"{name:<15}" + "".join(f"{cell:>{width}}" for cell in cells))
    lines += [f"  {message}" for message in results.get("skipped", {}).values()]
    protocol = results.get("settings", {}).get("protocol")
    literature = {"FVD", "IS", "FID-frame", *other_lengths} & set(results["generated"])
    if protocol and literature and not protocol.get("follows", True):
        lines.append(f"  not the {protocol['name']} protocol: " + "; ".join(protocol["deviations"]))
    return "\n".join(lines)


def _cell(row: dict, name: str) -> str:
    if name not in row:
        return "–"
    interval = row.get(f"{name}-ci")
    return f"{row[name]:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else f"{row[name]:.4g}"


def subset_clips(dataset, count: int, seed: int) -> torch.Tensor:
    """``count`` clips (fewer if the dataset is smaller) drawn without replacement, seeded, in index order."""
    count = min(count, len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.stack(
        [torch.as_tensor(dataset[int(i)]["video"], dtype=torch.float32) for i in order.sort().values]
    )


def _checkpoint_step(checkpoint: Path) -> int | None:
    """The training step of a checkpoint folder: from its name (``step-0000300``), else its state file."""
    step = checkpoint_step(checkpoint)
    if step is not None:
        return step
    try:
        state = torch.load(checkpoint / training.STATE_FILE, map_location="cpu", weights_only=True)
        return int(state["step"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError):
        return None


def _canonical(value):
    """Numbers as floats (``s_churn=0`` and ``0.0`` are the same evaluation), inf as text, keys sorted."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else str(float(value))
    return value


def _read_store(path: Path) -> dict:
    """The entries of ``eval.json`` ({} when absent); a file that is not a JSON object raises, naming it."""
    if not path.is_file():
        return {}
    stored = read_json(path, "evaluation cache")  # names the file when it is not JSON
    if not isinstance(stored, dict):
        raise ValueError(
            f"{path} is not an evaluation cache (a JSON object); move it away to start a fresh one"
        )
    return stored


def _store(path: Path, key: str, results: dict) -> None:
    """Add ``results`` under ``key`` to the JSON file, atomically (a crash never leaves half a file)."""
    existing = _read_store(path)
    existing[key] = results
    atomic_write_text(path, json.dumps(existing, indent=2, sort_keys=True, allow_nan=True))
