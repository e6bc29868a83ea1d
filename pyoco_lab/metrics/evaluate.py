"""Evaluate a trained video run: sample with its noise prior, score against real clips, save ``eval.json``.

``evaluate_run`` is what ``pyoco-lab evaluate`` and the notebooks call. For each run it reports, side by side,
the generated samples and held-out real clips (the floor a perfect model would reach with this many
samples), each against the *train* split the model learned from:

* lab metrics (embedded dataset only): FVD-lab, IS-lab, FD-frame-lab — a lab-internal ranking;
* the paper's metrics: FVD (I3D), IS (C3D), FID-frame (Inception) — only when their weight files are present,
  otherwise each is skipped with a message naming the missing file;
* temporal statistics (frame-cosine, motion-energy, diversity), which need no network.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pyoco_lab import edm, training
from pyoco_lab.data import EmbeddedVideoDataset, UCF101Clips
from pyoco_lab.metrics import lab, networks
from pyoco_lab.metrics.temporal import temporal_statistics

EVAL_FILE = "eval.json"


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
    device="cpu",
    progress: bool = True,
    sampler_options: dict | None = None,
) -> torch.Tensor:
    """``num_samples`` videos (N, F, C, H, W) in [−1, 1] on CPU, drawn batch by batch with ``prior``'s noise.

    ``shape`` is (F, C, H, W). Class-conditional models get balanced labels (sample i has class i mod K).
    The stochastic sampler's fresh noise follows the same prior. Seeded: the same call gives the same videos.
    ``sampler_options`` go to :func:`pyoco_lab.edm.sample` (e.g. ``s_churn``/``step`` for "stochastic",
    ``order``/``variant`` for "deis").
    """
    generator = torch.Generator().manual_seed(seed)
    # Churn noise of the stochastic sampler is drawn where x lives, from its own seeded stream.
    churn = torch.Generator(device=device).manual_seed(seed + 1)
    out = []
    for start in tqdm(range(0, num_samples, batch_size), desc="sampling", disable=not progress):
        n = min(batch_size, num_samples - start)
        noise = prior.sample((n, *shape), generator=generator).to(device)
        labels = (torch.arange(start, start + n) % num_classes).to(device) if num_classes else None
        cond = {"class_labels": labels} if labels is not None else {}
        options = dict(sampler_options or {})
        if sampler == "stochastic":
            options["noise_sampler"] = edm.prior_noise_sampler(prior, generator=churn)
        x0 = edm.sample(
            lambda x, s, cond=cond: denoiser(x, s, **cond),
            noise,
            sampler=sampler,
            num_steps=num_steps,
            **options,
        )
        out.append(x0.float().clamp(-1, 1).cpu())
    return torch.cat(out)


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
) -> dict:
    """Sample ``num_samples`` videos from the run's EMA weights and compute every available metric.

    Returns a JSON-ready dict ``{"settings", "generated", "real-test", "skipped", ...}`` and, with ``write``,
    stores it in ``<run>/eval.json`` under a key naming the settings (so sweeps of samplers and sample
    counts accumulate instead of overwriting each other).
    """
    if num_samples < 2:
        raise ValueError(
            f"--num-samples must be at least 2 (Fréchet distances need a covariance), got {num_samples}"
        )
    if sampler not in edm.SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(edm.SAMPLERS)}")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    denoiser, config = training.load_denoiser(run_or_checkpoint, ema=True, device=device)
    run_dir = _run_dir(Path(run_or_checkpoint))
    if config.phase != "video":
        raise ValueError(
            f"{run_dir} is an image-phase run; evaluate the video run fine-tuned from it "
            "(pyoco-lab train --phase video)"
        )
    if config.dataset == "embedded":
        real_train = EmbeddedVideoDataset(config.data_root, config.resolution, "train", config.num_frames)
        real_test = EmbeddedVideoDataset(config.data_root, config.resolution, "test", config.num_frames)
    else:
        real_train = UCF101Clips(
            root=config.data_root, resolution=config.resolution, split="train", num_frames=config.num_frames
        )
        real_test = UCF101Clips(
            root=config.data_root, resolution=config.resolution, split="test", num_frames=config.num_frames
        )
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
    # The same number of held-out real clips as samples, so both rows carry the same small-N bias.
    test_clips = _subset(real_test, num_samples, seed)
    results: dict = {
        "generated": temporal_statistics(generated),
        "real-test": temporal_statistics(test_clips),
        "skipped": {},
    }

    if config.dataset == "embedded":
        classifier = lab.lab_classifier(
            config.resolution, config.num_frames, root=config.data_root, device=device, progress=progress
        )
        reference = lab.cached_lab_features(classifier, real_train, "train", progress=progress)
        results["generated"].update(lab.lab_metrics(reference, lab.lab_features(classifier, generated)))
        results["real-test"].update(lab.lab_metrics(reference, lab.lab_features(classifier, test_clips)))
    else:
        for name in lab.LAB_METRIC_NAMES:
            results["skipped"][name] = (
                f"{name} skipped: the lab classifier is trained on the embedded dataset only"
            )

    weights = Path(weights_dir) if weights_dir is not None else networks.weights_dir()
    present = [spec for spec in networks.DETECTORS if (weights / spec.filename).is_file()]
    for spec in networks.DETECTORS:
        if spec not in present:
            results["skipped"][spec.metric] = networks.missing_message(spec, weights)
    if present:
        # Up to 2,048 real clips in memory (1.6 GB at 64 px, 16 frames): only when a network will use them.
        train_clips = _subset(real_train, max_real, seed)
        for row, clips in (("generated", generated), ("real-test", test_clips)):
            values, skipped = networks.standard_metrics(
                train_clips, clips, directory=weights, device=device, batch_size=batch_size, progress=progress
            )
            results[row].update(values)
            results["skipped"].update(skipped)

    results["settings"] = {
        "run": str(run_dir),
        "checkpoint": str(
            training.latest_checkpoint(run_dir)
            if (run_dir / training.CONFIG_FILE).is_file()
            else run_or_checkpoint
        ),
        "num_samples": num_samples,
        "sampler": sampler,
        "num_steps": num_steps,
        "sampler_options": dict(sampler_options or {}),
        "seed": seed,
        "noise": config.noise,
        "alpha": config.alpha,
        "resolution": config.resolution,
        "num_frames": config.num_frames,
        "dataset": config.dataset,
        "reference_split": "train",
        "num_real_reference": len(real_train),
        "num_real_test": len(test_clips),
        "lab_classifier_version": lab.LAB_CLASSIFIER_VERSION,
        "device": str(device),
        "sampling_seconds": round(sampling_s, 2),
    }
    if write:
        options = "".join(f"-{k}{v}" for k, v in sorted((sampler_options or {}).items()))
        _store(run_dir / EVAL_FILE, f"{sampler}{options}-{num_steps}steps-n{num_samples}-seed{seed}", results)
    return results


def format_table(results: dict) -> str:
    """The evaluation as a plain-text table (metrics × {generated, held-out real}) plus skip messages."""
    rows = (
        "FVD-lab",
        "IS-lab",
        "FD-frame-lab",
        "FVD",
        "IS",
        "FID-frame",
        "frame-cosine",
        "motion-energy",
        "diversity",
    )
    lines = [f"{'metric':<14}{'generated':>14}{'real (test)':>14}", "-" * 42]
    for name in rows:
        if name not in results["generated"]:
            continue
        gen, real = results["generated"][name], results["real-test"].get(name, math.nan)
        lines.append(f"{name:<14}{gen:>14.4g}{real:>14.4g}")
    lines += [f"  {message}" for message in results.get("skipped", {}).values()]
    return "\n".join(lines)


def _subset(dataset, count: int, seed: int) -> torch.Tensor:
    count = min(count, len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.stack(
        [torch.as_tensor(dataset[int(i)]["video"], dtype=torch.float32) for i in order.sort().values]
    )


def _run_dir(path: Path) -> Path:
    path = path.parent if path.is_file() else path
    return path if (path / training.CONFIG_FILE).is_file() else path.parent.parent


def _store(path: Path, key: str, results: dict) -> None:
    """Add ``results`` under ``key`` to the JSON file, atomically (a crash never leaves half a file)."""
    existing = json.loads(path.read_text()) if path.is_file() else {}
    existing[key] = results
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(existing, out, indent=2, sort_keys=True, allow_nan=True)
    os.replace(tmp, path)
