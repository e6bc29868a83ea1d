"""Table 1 and Fig. 2a: invert real clips frame by frame with the image model, compare the noise maps.

Section 4 observes that an *image* diffusion model, run backwards along its ODE (eq. 2, sigma from
~0 up to sigma_max) on the frames of a real video, maps them to noise that is correlated within
the video: average pairwise cosine similarity 0.206 +- 0.156 between frames of the same video vs
0.001 +- 0.009 between frames of different videos (Table 1). That correlation is what the video
noise priors preserve.

For i.i.d. unit noise of D = C*H*W pixels the cosine similarity of two maps is ~N(0, 1/D):
0.009 is exactly 1/sqrt(3*64*64), so the paper's "different video" row is what independent noise
gives at 64x64. At 32x32 the same floor is 1/sqrt(3*32*32) = 0.018.

Clips of the embedded dataset come from a few source videos/photos (``video_id``); several clips
can show the same source. Pairs are therefore split three ways: same clip (Table 1 a), different
source (Table 1 b), and different clips of the same source (reported separately, in neither row).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import torch
from einops import rearrange
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from pyoco_lab import edm, noise
from pyoco_lab.data import EmbeddedVideoDataset
from pyoco_lab.training import latest_checkpoint, load_denoiser
from pyoco_lab.viz.figures import cosine_similarity_matrix


def load_heldout_clips(
    count: int,
    *,
    resolution: int = 32,
    num_frames: int = 8,
    split: str = "test",
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` clips (N, F, 3, H, W) in [-1, 1] and their source ids (N,), spread over sources.

    Clips are taken round-robin over the sources of the split (in a seeded random order), so the
    "different video" pairs cover as many sources as the split has.
    """
    dataset = EmbeddedVideoDataset(root, resolution, split, num_frames)
    if count < 2:
        raise ValueError(f"need at least 2 clips to compare noise maps, got {count}")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    by_source: dict[int, list[int]] = {}
    for index in order:
        by_source.setdefault(int(dataset[index]["video_id"]), []).append(index)
    chosen: list[int] = []
    while len(chosen) < count and any(by_source.values()):
        for queue in by_source.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    if len(chosen) < count:
        raise ValueError(f"the {split} split has only {len(chosen)} clips; ask for fewer (inversion_videos)")
    items = [dataset[i] for i in chosen]
    videos = torch.stack([item["video"] for item in items]).float()
    ids = torch.tensor([int(item["video_id"]) for item in items])
    return videos, ids


@torch.no_grad()
def invert_clips(
    denoiser, videos: torch.Tensor, *, num_steps: int = 32, batch_size: int = 8, progress: bool = True
) -> torch.Tensor:
    """Noise maps (N, F, C, H, W) of every frame, inverted independently by the image model (eq. 2)."""
    maps = []
    for start in tqdm(range(0, len(videos), batch_size), desc="inverting clips", disable=not progress):
        chunk = videos[start : start + batch_size]
        maps.append(edm.invert(denoiser, chunk, num_steps=num_steps, frames_as_batch=True).float().cpu())
    return torch.cat(maps)


def cached_inversion(
    image_run: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    count: int,
    num_frames: int,
    num_steps: int,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """{"videos", "ids", "maps"} for ``count`` held-out clips, computed once per image model and settings.

    Stored as safetensors in ``cache_dir/inversion/`` under a key of the image checkpoint and the
    settings, so notebooks 02 (Table 1) and 03 (t-SNE) share the same inverted maps.
    """
    checkpoint = latest_checkpoint(image_run)
    if checkpoint is None:
        raise FileNotFoundError(f"{image_run} holds no finished checkpoint; train the image model first")
    key = json.dumps([str(Path(checkpoint).resolve()), count, num_frames, num_steps, seed])
    path = Path(cache_dir) / "inversion" / f"{hashlib.sha256(key.encode()).hexdigest()[:12]}.safetensors"
    if path.exists():
        return load_file(str(path))
    denoiser, config = load_denoiser(image_run)
    videos, ids = load_heldout_clips(
        count, resolution=config.resolution, num_frames=num_frames, seed=seed, root=config.data_root
    )
    maps = invert_clips(denoiser, videos, num_steps=num_steps, progress=progress)
    tensors = {"videos": videos.contiguous(), "ids": ids.contiguous(), "maps": maps.contiguous()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
    return tensors


def _mean_std(values: torch.Tensor) -> dict[str, float]:
    values = values.double()
    n = values.numel()
    return {
        "mean": float(values.mean()) if n else math.nan,
        "std": float(values.std()) if n > 1 else 0.0,
        "count": int(n),
    }


def cosine_similarity_table(maps: torch.Tensor, source_ids: torch.Tensor | None = None) -> dict[str, dict]:
    """Table 1: mean +- std of pairwise cosine similarity of noise maps (N, F, ...).

    "same_video": pairs of different frames of the same clip; "different_video": pairs of frames of
    clips from different sources; "same_source": frames of different clips of one source (only when
    ``source_ids`` is given and some clips share a source).
    """
    n, f = maps.shape[:2]
    if f < 2:
        raise ValueError(f"need at least 2 frames per clip for same-video pairs, got {f}")
    cos = cosine_similarity_matrix(rearrange(maps, "n f ... -> (n f) ..."))
    clip = torch.arange(n).repeat_interleave(f)
    source = (source_ids if source_ids is not None else torch.arange(n)).repeat_interleave(f)
    upper = torch.triu(torch.ones_like(cos, dtype=torch.bool), diagonal=1)
    same_clip = clip[:, None] == clip[None, :]
    same_source = source[:, None] == source[None, :]
    table = {
        "same_video": _mean_std(cos[upper & same_clip]),
        "different_video": _mean_std(cos[upper & ~same_source]),
    }
    shared = upper & same_source & ~same_clip
    if shared.any():
        table["same_source"] = _mean_std(cos[shared])
    if not table["different_video"]["count"]:
        raise ValueError(
            "all clips come from one source; use more clips (inversion_videos) to get different videos"
        )
    table["iid_floor_std"] = 1.0 / math.sqrt(maps[0, 0].numel())
    return table


def similarity_by_distance(maps: torch.Tensor) -> dict[str, list[float]]:
    """Mean, std and standard error of the cosine similarity of frames i, j of a clip vs |i - j|."""
    flat = torch.nn.functional.normalize(rearrange(maps.double(), "n f ... -> n f (...)"), dim=-1)
    cos = flat @ flat.transpose(1, 2)  # (N, F, F)
    f = cos.shape[1]
    means, stds, sems = [], [], []
    for d in range(f):
        values = torch.diagonal(cos, offset=d, dim1=1, dim2=2).reshape(-1)
        means.append(float(values.mean()))
        std = float(values.std()) if values.numel() > 1 else 0.0
        stds.append(std)
        # clips are independent; frame pairs within a clip are not, so count clips, not pairs
        sems.append(std / math.sqrt(cos.shape[0]))
    return {"distance": list(range(f)), "mean": means, "std": stds, "sem": sems}


def fit_prior_alphas(by_distance: dict[str, list[float]]) -> dict[str, float]:
    """The mixed and progressive alpha whose closed-form correlation best fits similarity vs distance."""
    return {
        kind: noise.fit_alpha(kind, by_distance["distance"], by_distance["mean"])
        for kind in ("mixed", "progressive")
    }


def gaussianity(maps: torch.Tensor, *, tolerance: float = 0.25) -> dict:
    """Do the inverted maps look like unit Gaussian noise? Mean, variance, lag-1 spatial autocorrelation.

    An exact inversion of a well-trained model returns N(0, I)-like maps: mean ~0, variance ~1 and
    neighbouring pixels nearly uncorrelated. ``tolerance`` bounds |mean|, |variance - 1| and
    |autocorrelation|: far above sampling error (which is < 0.01 here), so failing it means the model
    has not learned the data distribution well enough for its ODE to land in the prior.
    """
    x = maps.double()
    mean, variance = float(x.mean()), float(x.var())
    centred = x - x.mean()
    horizontal = (centred[..., :, 1:] * centred[..., :, :-1]).mean() / centred.pow(2).mean()
    vertical = (centred[..., 1:, :] * centred[..., :-1, :]).mean() / centred.pow(2).mean()
    autocorrelation = float((horizontal + vertical) / 2)
    problems = []
    if abs(mean) > tolerance:
        problems.append(f"mean {mean:.2f} is not ~0")
    if abs(variance - 1) > tolerance:
        problems.append(f"variance {variance:.2f} is not ~1")
    if abs(autocorrelation) > tolerance:
        problems.append(
            f"neighbouring pixels correlate ({autocorrelation:.2f}): the maps still show image structure"
        )
    message = (
        "the inverted maps look like unit Gaussian noise"
        if not problems
        else "; ".join(problems) + " -- the image model is undertrained for this resolution; train it longer "
        "(image_steps) before reading Table 1 as evidence"
    )
    return {
        "mean": mean,
        "variance": variance,
        "autocorrelation": autocorrelation,
        "looks_gaussian": not problems,
        "message": message,
    }
