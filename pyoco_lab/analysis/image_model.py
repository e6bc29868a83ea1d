"""How good is the image model every finetune starts from? Samples beside training frames, measured
with the frame yardsticks next to their controls.

PYoCo's evidence stands on the image model (Section 5; Table 5's "Image Diffusion" row): Table 1
inverts real frames with it, and every Fig. 7 / Table 5 / Fig. 8 finetune starts from it. Its samples are
compared with the training distribution, as FID compares a generator with its training set, by the
yardsticks of ``pyoco_lab.metrics.yardsticks`` (KID-app, the two-sample test, precision / recall, density /
coverage, memorisation), and every measure is shown beside the controls that prove it can tell real frames
from noise, shuffled pixels, flat colour and blur (issue #22).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from einops import rearrange

from pyoco_lab import devices, edm
from pyoco_lab.analysis.inversion import model_identity
from pyoco_lab.fileio import atomic_write_text, read_json
from pyoco_lab.metrics import appearance, yardsticks
from pyoco_lab.training import load_denoiser


@torch.no_grad()
def sample_images(
    denoiser,
    count: int,
    resolution: int,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    sampler_options: dict | None = None,
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
            x0 = edm.sample(denoise, x_t, sampler=sampler, num_steps=num_steps, **(sampler_options or {}))
        out.append(x0[:, 0].float().clamp(-1, 1).cpu())
    return torch.cat(out)


def image_model_quality(
    image_model: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    num_samples: int = 512,
    sampler: str = "heun",
    num_steps: int = 18,
    sampler_options: dict | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """The image model's samples measured with the frame yardsticks, beside the controls. Cached.

    ``rows``: {row name: frame scores} for the samples and for every control of
    ``metrics.yardsticks.frame_controls`` (real frames of other train clips — the floor —, held-out scenes,
    noise, shuffled pixels, flat colour, 4×4 blur, copies of training frames), all against the same
    training-distribution reference at the same N; ``controls_pass``: which measures rank every corruption
    below real (:func:`yardsticks.control_verdicts`); 16 samples and 16 training frames for a picture.
    """
    key = json.dumps(
        [
            model_identity(image_model),
            num_samples,
            sampler,
            num_steps,
            seed,
            appearance.APPEARANCE_VERSION,
            yardsticks.YARDSTICKS_VERSION,
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(cache_dir) / "image_quality" / f"yardsticks-{digest}.json"
    if path.is_file():
        stored = read_json(path, "image-model quality cache")
        return {**stored, "samples": torch.tensor(stored["samples"]), "real": torch.tensor(stored["real"])}
    denoiser, config = load_denoiser(image_model)
    samples = sample_images(
        denoiser,
        num_samples,
        config.resolution,
        sampler=sampler,
        num_steps=num_steps,
        sampler_options=sampler_options,
        seed=seed,
    )
    net = appearance.appearance_net(config.resolution, root=config.data_root, progress=progress)
    sets = yardsticks.real_sets(net, config.resolution, num_samples, root=config.data_root, seed=seed)
    rows = {SAMPLES_ROW: yardsticks.frame_scores(sets, net, samples, seed=seed)}
    rows.update(yardsticks.frame_controls(sets, net, seed=seed))
    real = sets.real[
        _spread(len(sets.real), 16)
    ]  # training frames across the split, as the samples should be
    result = {
        "image_model": model_identity(image_model),
        "resolution": config.resolution,
        "sampler": sampler,
        "num_steps": num_steps,
        "sampler_options": dict(sampler_options or {}),
        "num_samples": num_samples,
        "num_reference": len(sets.reference),
        "rows": rows,
        "controls_pass": yardsticks.control_verdicts(rows),
        "samples": samples[:16].tolist(),
        "real": real.tolist(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result))
    return {**result, "samples": samples[:16], "real": real}


def registry_quality(quality: dict, measured_by: str) -> dict[str, str]:
    """The registry's record of :func:`image_model_quality`: the samples' yardsticks beside the real floor,
    each with its interval, and whether every measure passed its controls (``pretrained list`` shows it)."""
    samples, real = quality["rows"][SAMPLES_ROW], quality["rows"][yardsticks.REAL_ROW]
    n = f"(N {quality['num_samples']} vs {quality['num_reference']} training frames)"

    def with_ci(row: dict, name: str) -> str:
        low, high = row[f"{name}-ci"]
        return f"{row[name]:.3f} [{low:.3f}, {high:.3f}]"

    failed = [m for m, v in quality["controls_pass"].items() if not v["passes"]]
    return {
        "yardsticks KID-app, samples vs training frames": f"{with_ci(samples, 'KID-app')} {n}",
        "yardsticks KID-app floor, real vs training frames": with_ci(real, "KID-app"),
        "yardsticks C2ST-frame, samples vs training frames (0.5 = indistinguishable)": with_ci(
            samples, "C2ST-frame"
        ),
        "yardsticks precision / recall (real floor)": f"{samples['precision-app']:.2f} / "
        f"{samples['recall-app']:.2f} ({real['precision-app']:.2f} / {real['recall-app']:.2f})",
        "yardsticks density / coverage (real floor)": f"{samples['density-app']:.2f} / "
        f"{samples['coverage-app']:.2f} ({real['density-app']:.2f} / {real['coverage-app']:.2f})",
        "yardsticks memorisation NN-ratio / copy-fraction": f"{samples['NN-ratio']:.2f} / "
        f"{samples['copy-fraction']:.2f}",
        "yardsticks controls": "every measure passed" if not failed else f"failed: {', '.join(failed)}",
        "yardsticks measured_by": measured_by,
    }


def _spread(length: int, count: int) -> torch.Tensor:
    return torch.linspace(0, length - 1, min(count, length)).round().long()


SAMPLES_ROW = "image model samples"


def samples_beside_real_figure(samples: torch.Tensor, real: torch.Tensor, *, title: str = ""):
    """Two rows of images: the image model's samples above, real training frames below."""
    count = min(len(samples), len(real), 16)
    fig, axes = plt.subplots(2, count, figsize=(count * 0.9, 2.2), layout="constrained")
    for row, (images, name) in enumerate(((samples, "samples"), (real, "training frames"))):
        for i in range(count):
            ax = axes[row, i]
            ax.imshow(rearrange((images[i].clamp(-1, 1) + 1) / 2, "c h w -> h w c").numpy())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
