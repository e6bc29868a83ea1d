"""The lab's appearance network: features of single frames that see what a person sees in them.

What the frame yardsticks (``KID-app``, ``FD-app``, precision/recall, density/coverage) compare. FID does
this with Inception-v3 trained on ImageNet (Heusel et al. 2017); no such network can be downloaded here, and
the lab classifier's appearance stream (``metrics.lab``) was trained to recognise *motion* classes, so its
pooled features hardly move when frames become Gaussian noise, shuffled pixels or flat colour (issue #22:
noise scored 3× closer to real than real training frames did).

Design, and why:

* **Task: which scene is this frame from?** A small CNN is trained on the train split's frames to predict
  the video identity (18 scenes: photographs, shots of sample videos). Scenes differ in colour, layout and
  texture, so that is what the network must encode. Random crops (reflect padding) and horizontal flips
  keep it from keying on exact pixel positions. It never sees a corrupted frame: the controls the
  yardsticks are checked against (noise, shuffled pixels, flat colour, blur) are not training targets, so
  passing them is evidence, not construction.
* **Features: every stage, mean and spread of each channel** (3 stages at full, ½ and ¼ resolution):
  the first stage's spread is the energy of local edges (noise and shuffling inflate it), the last stage's
  mean is the scene content. Texture statistics of several layers, as Gatys et al.'s style features and
  the multi-layer perceptual metrics do. 2 × (16 + 32 + 48) = 192 dimensions.
* **Plus a fixed detail block**: the spread of each colour channel in the three finest bands of a
  Laplacian pyramid (Burt & Adelson 1983; the band energies of Portilla & Simoncelli's texture
  statistics), 9 dimensions. A network trained to name scenes learns that the scene does not depend on
  sharpness — measured: its features scored a 4×4 blur like real frames — so how much detail a frame
  has is measured directly.
* **The space** (:func:`embed`): every dimension standardised with the reference set's mean and std,
  then each block (3 stages + detail) scaled by 1/√(its size), so each block weighs the same in Euclidean
  distances and kernels whatever its channel count. KID, precision/recall and density/coverage work in it.
* Trained once per (dataset, resolution) in well under a minute on 2 CPU cores, cached under
  ``<data root>/cache`` with its version and a fingerprint of the data and recipe in the file name.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from pyoco_lab.data import EmbeddedFramesDataset, default_data_root
from pyoco_lab.fileio import publish_file
from pyoco_lab.progress import tqdm

# Bump when the architecture, the recipe or the features change: old cached networks are then ignored.
APPEARANCE_VERSION = 1
STAGE_WIDTHS = (16, 32, 48)
DETAIL_BANDS = 3


class AppearanceNet(nn.Module):
    """Three conv stages (full, ½, ¼ resolution) → a scene head; features pool every stage."""

    def __init__(self, num_scenes: int, widths: tuple[int, ...] = STAGE_WIDTHS):
        super().__init__()
        self.num_scenes, self.widths = int(num_scenes), tuple(widths)
        self.cache_path: Path | None = None  # the file appearance_net() loaded or wrote, if any
        stages, previous = [], 3
        for i, width in enumerate(self.widths):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 3, stride=stride, padding=1),
                    nn.SiLU(),
                    nn.Conv2d(width, width, 3, padding=1),
                    nn.SiLU(),
                )
            )
            previous = width
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(previous, self.num_scenes)

    @property
    def block_sizes(self) -> tuple[int, ...]:
        """Sizes of the feature blocks: each stage's (mean ⊕ std), then the detail block."""
        return (*(2 * w for w in self.widths), 3 * DETAIL_BANDS)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 201) features of frames (N, 3, H, W) in [−1, 1]: per stage channel mean ⊕ channel std, then
        the detail block (:func:`detail_statistics`)."""
        pooled, x = [], frames
        for stage in self.stages:
            x = stage(x)
            pooled += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        return torch.cat([*pooled, detail_statistics(frames)], dim=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Scene logits (N, num_scenes)."""
        x = frames
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))


def detail_statistics(frames: torch.Tensor, bands: int = DETAIL_BANDS) -> torch.Tensor:
    """(N, 3·bands): std of each colour channel in the finest ``bands`` levels of a Laplacian pyramid
    (level = image − its 2×-downsampled-and-upsampled self; the next level works on the downsampled one)."""
    out, x = [], frames
    for _ in range(bands):
        if min(x.shape[-2:]) < 2:
            out.append(torch.zeros(x.shape[:2], device=x.device))
            continue
        coarse = F.avg_pool2d(x, 2)
        up = F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append((x - up).std(dim=(2, 3)))
        x = coarse
    return torch.cat(out, dim=1)


def embed(reference: np.ndarray, *sets: np.ndarray, block_sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The appearance space: each dimension standardised with ``reference``'s mean and std (constant
    dimensions: std 1), then each block scaled by 1/√size so every block weighs the same."""
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape[1] != sum(block_sizes):
        raise ValueError(f"features have {reference.shape[1]} dimensions, the blocks {sum(block_sizes)}")
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    scale = np.where(std > 1e-12, std, 1.0) / np.repeat(1 / np.sqrt(block_sizes), block_sizes)
    return tuple((np.asarray(x, dtype=np.float64) - mean) / scale for x in (reference, *sets))


@dataclass(frozen=True)
class AppearanceTraining:
    """The recipe (part of the cache key: change it and the network is retrained)."""

    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0


@torch.no_grad()
def appearance_features(
    net: AppearanceNet, frames: torch.Tensor, *, batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """Features (N, 192) float64 of frames (N, 3, H, W) — or of every frame of clips (N, F, 3, H, W)."""
    if not isinstance(frames, torch.Tensor) or frames.ndim not in (4, 5) or frames.shape[-3] != 3:
        shape = tuple(frames.shape) if hasattr(frames, "shape") else type(frames).__name__
        raise ValueError(f"frames must have shape (N, 3, H, W) or clips (N, F, 3, H, W), got {shape}")
    frames = frames.flatten(0, 1) if frames.ndim == 5 else frames
    device = next(net.parameters()).device
    net.eval()
    out = []
    for start in tqdm(
        range(0, len(frames), batch_size), desc="appearance", disable=not progress, leave=False
    ):
        out.append(net.features(frames[start : start + batch_size].to(device, torch.float32)).double().cpu())
    return torch.cat(out).numpy()


def train_appearance_net(
    frames: torch.Tensor,
    scenes: torch.Tensor,
    *,
    recipe: AppearanceTraining = AppearanceTraining(),
    device=None,
    progress: bool = True,
) -> tuple[AppearanceNet, dict]:
    """Train on uint8 frames (N, 3, H, W) labelled with their scene index (0..K−1)."""
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    num_scenes = int(scenes.max()) + 1
    net = AppearanceNet(num_scenes).to(device or "cpu")
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=recipe.steps)
    size = frames.shape[-1]
    net.train()
    for _ in tqdm(range(recipe.steps), desc="training appearance network", disable=not progress, leave=False):
        idx = torch.randint(0, len(frames), (recipe.batch_size,), generator=generator)
        x = _augment(frames[idx].float() / 127.5 - 1, size, generator)
        loss = F.cross_entropy(net(x.to(next(net.parameters()).device)), scenes[idx].to(x.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        sample = torch.randperm(len(frames), generator=generator)[:2048]
        logits = net((frames[sample].float() / 127.5 - 1).to(next(net.parameters()).device))
        accuracy = float((logits.argmax(1).cpu() == scenes[sample]).float().mean())
    return net, {"train_scene_accuracy": accuracy, "train_frames": len(frames), "scenes": num_scenes}


def _augment(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop of a reflect-padded frame (shift up to size/8) and a horizontal flip, per batch."""
    pad = max(1, size // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=generator))
    x = padded[:, :, dy : dy + size, dx : dx + size]
    return x.flip(-1) if bool(torch.rand((), generator=generator) < 0.5) else x


def appearance_net(
    resolution: int,
    *,
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    recipe: AppearanceTraining = AppearanceTraining(),
    device=None,
    progress: bool = True,
) -> AppearanceNet:
    """The appearance network for the embedded dataset at this resolution: cached, else trained (atomically
    written; the file name holds the version, the resolution and a fingerprint of the data and recipe)."""
    dataset = EmbeddedFramesDataset(root, resolution, "train", build_if_missing=True)
    clips = np.asarray(dataset._clips[dataset.indices])  # (clips, 16, 3, H, W) uint8
    scene_ids = np.unique(dataset.video_ids, return_inverse=True)[1]
    frames = torch.from_numpy(clips.reshape(-1, *clips.shape[2:]))
    scenes = torch.from_numpy(np.repeat(scene_ids, clips.shape[1])).long()
    digest = hashlib.sha1(repr((frames.shape, asdict(recipe))).encode())
    digest.update(frames[:: max(1, len(frames) // 64)].numpy().tobytes())
    cache = Path(cache_dir) if cache_dir is not None else Path(root or default_data_root()) / "cache"
    path = cache / f"appearance-v{APPEARANCE_VERSION}-r{resolution}-{digest.hexdigest()[:10]}.safetensors"
    if path.is_file():
        return load_appearance_net(path, device=device)
    net, report = train_appearance_net(frames, scenes, recipe=recipe, device=device, progress=progress)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    meta = {
        "version": str(APPEARANCE_VERSION),
        "num_scenes": str(net.num_scenes),
        "report": json.dumps(report),
    }
    save_file({k: v.contiguous().cpu() for k, v in net.state_dict().items()}, str(tmp), metadata=meta)
    publish_file(tmp, path)
    net.cache_path = path
    return net


def load_appearance_net(path: str | os.PathLike, *, device=None) -> AppearanceNet:
    """Load a cached network written by :func:`appearance_net`."""
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if meta.get("version") != str(APPEARANCE_VERSION):
        raise ValueError(
            f"{path} is appearance network version {meta.get('version')}, this code needs "
            f"{APPEARANCE_VERSION}; delete the file to retrain"
        )
    net = AppearanceNet(int(meta["num_scenes"]))
    net.load_state_dict(load_file(str(path)))
    net.cache_path = Path(path)
    return net.to(device or "cpu").eval().requires_grad_(False)
