"""How good is the image model every finetune starts from? Samples beside real frames, and
FD-frame-lab of its samples against held-out real frames next to the real-vs-real floor.

PYoCo's evidence stands on the image model (Section 5; Table 5's "Image Diffusion" row): Table 1
inverts real frames with it, and every Fig. 7 / Table 5 / Fig. 8 finetune starts from it. The lab's
yardstick here is FD-frame-lab -- the Fréchet distance between the lab classifier's appearance
features of two sets of frames (``pyoco_lab.metrics.lab``): samples vs test frames, beside train
frames vs test frames (what a perfect model of the train split would score with this many frames).
Intervals are bootstrap 95% intervals over the frames of both sets.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from einops import rearrange

from pyoco_lab import devices, edm
from pyoco_lab.analysis.inversion import model_identity
from pyoco_lab.data import EmbeddedFramesDataset
from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.metrics import lab
from pyoco_lab.metrics.frechet import frechet_distance_from_features
from pyoco_lab.training import load_denoiser


@torch.no_grad()
def sample_images(
    denoiser,
    count: int,
    resolution: int,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    seed: int = 0,
    batch_size: int = 128,
) -> torch.Tensor:
    """``count`` images (N, 3, H, W) in [-1, 1] on the CPU from an image denoiser, i.i.d. noise, seeded.

    Sampled on the denoiser's device; the noise comes from a CPU generator (the same images on any device).
    """
    generator = torch.Generator().manual_seed(seed)
    device = devices.device_of(denoiser)
    size = resolution
    out = []
    for start in range(0, count, batch_size):
        n = min(batch_size, count - start)
        x_t = torch.randn((n, 1, 3, size, size), generator=generator).to(device)

        def denoise(x, sigma):
            return denoiser(x[:, 0], sigma)[:, None]

        with devices.sampling_mode(device):
            x0 = edm.sample(denoise, x_t, sampler=sampler, num_steps=num_steps)
        out.append(x0[:, 0].float().clamp(-1, 1).cpu())
    return torch.cat(out)


def real_frames(count: int, *, resolution: int, split: str, seed: int = 0, root=None) -> torch.Tensor:
    """``count`` real frames (N, 3, H, W) in [-1, 1] drawn at random from a split of the embedded data."""
    dataset = EmbeddedFramesDataset(root, resolution, split)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.stack([torch.as_tensor(dataset[int(i)]["image"]).float() for i in order.sort().values])


def bootstrap_fd(real: np.ndarray, other: np.ndarray, *, rounds: int = 200, seed: int = 0) -> dict:
    """Fréchet distance with a bootstrap 95% interval (both sets resampled with replacement)."""
    rng = np.random.default_rng(seed)
    distance = frechet_distance_from_features(real, other).distance
    draws = [
        frechet_distance_from_features(
            real[rng.integers(0, len(real), len(real))], other[rng.integers(0, len(other), len(other))]
        ).distance
        for _ in range(rounds)
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"value": float(distance), "ci95": [float(low), float(high)], "n": [len(real), len(other)]}


def image_model_quality(
    image_model: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    num_frames: int,
    num_samples: int = 512,
    sampler: str = "heun",
    num_steps: int = 18,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """FD-frame-lab of the model's samples vs test frames and of train vs test frames (the floor),
    each with a bootstrap interval, plus 16 samples and 16 test frames for a picture. Cached."""
    key = json.dumps([model_identity(image_model), num_frames, num_samples, sampler, num_steps, seed])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(cache_dir) / "image_quality" / f"{digest}.json"
    if path.is_file():
        stored = read_json(path, "image-model quality cache")
        stored["samples"] = torch.tensor(stored["samples"])
        stored["real"] = torch.tensor(stored["real"])
        return stored
    denoiser, config = load_denoiser(image_model)
    samples = sample_images(
        denoiser, num_samples, config.resolution, sampler=sampler, num_steps=num_steps, seed=seed
    )
    test = real_frames(
        num_samples, resolution=config.resolution, split="test", seed=seed, root=config.data_root
    )
    train = real_frames(
        num_samples, resolution=config.resolution, split="train", seed=seed, root=config.data_root
    )
    classifier = lab.lab_classifier(config.resolution, num_frames, root=config.data_root, progress=progress)
    features = {
        name: lab.lab_frame_features(classifier, x)
        for name, x in (("samples", samples), ("test", test), ("train", train))
    }
    result = {
        "image_model": model_identity(image_model),
        "resolution": config.resolution,
        "sampler": sampler,
        "num_steps": num_steps,
        "feature_dim": int(features["test"].shape[1]),
        "FD-frame-lab": bootstrap_fd(features["test"], features["samples"], seed=seed),
        "floor": bootstrap_fd(features["test"], features["train"], seed=seed),
        "samples": samples[:16].tolist(),
        "real": test[_spread(len(test), 16)].tolist(),  # across the split, not 16 neighbours of one source
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result))
    return {**result, "samples": samples[:16], "real": test[_spread(len(test), 16)]}


def _spread(length: int, count: int) -> torch.Tensor:
    return torch.linspace(0, length - 1, min(count, length)).round().long()


def samples_beside_real_figure(samples: torch.Tensor, real: torch.Tensor, *, title: str = ""):
    """Two rows of images: the image model's samples above, real held-out frames below."""
    count = min(len(samples), len(real), 16)
    fig, axes = plt.subplots(2, count, figsize=(count * 0.9, 2.2), layout="constrained")
    for row, (images, name) in enumerate(((samples, "samples"), (real, "real frames"))):
        for i in range(count):
            ax = axes[row, i]
            ax.imshow(rearrange((images[i].clamp(-1, 1) + 1) / 2, "c h w -> h w c").numpy())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
