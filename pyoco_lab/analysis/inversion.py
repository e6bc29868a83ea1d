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

import math
import os
from pathlib import Path

import torch
from einops import rearrange
from safetensors.torch import load_file, save_file

from pyoco_lab import devices, edm, noise
from pyoco_lab.data import EmbeddedVideoDataset
from pyoco_lab.fileio import follow_umask, json_digest
from pyoco_lab.progress import tqdm
from pyoco_lab.training import load_denoiser, pretrained, resolve_checkpoint
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
    # Built here if missing (offline, about a minute), as training and the yardsticks do: a notebook
    # (02, 03) run on a fresh clone works without a separate `pyoco-lab data build`.
    dataset = EmbeddedVideoDataset(root, resolution, split, num_frames, build_if_missing=True)
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
    """Noise maps (N, F, C, H, W) of every frame, inverted independently by the image model (eq. 2).

    Computed on the denoiser's device (the maps come back on the CPU). Full fp32 without TF32: the
    inversion is an ODE solve whose maps Table 1 compares to 1e-2, so it keeps its precision.
    """
    device = devices.device_of(denoiser)
    maps = []
    batches = range(0, len(videos), batch_size)
    # progress per ODE step: one batch of a large image model takes minutes (num_steps - 1 steps each)
    total = len(batches) * (num_steps - 1)
    bar = tqdm(total=total, desc="inverting clips", unit="step", disable=not progress)
    for start in batches:
        chunk = videos[start : start + batch_size].to(device)
        step_done = lambda i, x: bar.update(1)  # noqa: E731
        inverted = edm.invert(denoiser, chunk, num_steps=num_steps, frames_as_batch=True, callback=step_done)
        maps.append(inverted.float().cpu())
    bar.close()
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
    key = json_digest([model_identity(image_run), count, num_frames, num_steps, seed], 12)
    path = Path(cache_dir) / "inversion" / f"{key}.safetensors"
    if path.exists():
        return load_file(str(path))
    denoiser, config = load_denoiser(image_run)
    videos, ids = load_heldout_clips(
        count, resolution=config.resolution, num_frames=num_frames, seed=seed, root=config.data_root
    )
    maps = invert_clips(denoiser, videos, num_steps=num_steps, progress=progress)
    tensors = {"videos": videos.contiguous(), "ids": ids.contiguous(), "maps": maps.contiguous()}
    _save_atomic(tensors, path)
    return tensors


def model_identity(image_model: str | os.PathLike) -> str:
    """What names an image model in cache keys: a shipped model's name and hash, or a run's checkpoint."""
    if pretrained.is_pretrained(image_model):
        return pretrained.init_record(image_model)
    try:  # a run folder (its newest checkpoint) or one checkpoint folder (a point of a training curve)
        checkpoint, _ = resolve_checkpoint(image_model)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}; train the image model first") from None
    return str(Path(checkpoint).resolve())


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp))
    follow_umask(tmp)  # safetensors writes 0600; the cache is shared (--cache)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# Table 1 the paper's way: frames drawn at random positions across each source video.


def sample_source_frames(
    per_source: int = 16,
    *,
    resolution: int = 32,
    split: str = "test",
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> dict[str, torch.Tensor]:
    """Up to ``per_source`` frames of every source video of the split, at random positions across it.

    Fig. 2's caption: "input frames randomly sampled from videos". A source (``video_id``: a shot of
    a real video, or a photo filmed by the virtual camera) spans many 16-frame clips; positions
    (clip, frame) are drawn without replacement over all of them, and a frame whose pixels equal an
    already chosen one (overlapping clip windows) is skipped, so no frame is ever paired with itself.
    Returns {"frames" (M, C, H, W) in [-1, 1], "ids" (M,), "clip" (M,), "frame" (M,)}.
    """
    dataset = EmbeddedVideoDataset(root, resolution, split, 16, build_if_missing=True)
    generator = torch.Generator().manual_seed(seed)
    by_source: dict[int, list[int]] = {}
    for index in range(len(dataset)):
        by_source.setdefault(int(dataset.video_ids[index]), []).append(index)
    if len(by_source) < 2:
        raise ValueError(f"the {split} split has {len(by_source)} source video(s); Table 1 needs two or more")
    frames, ids, clips, positions = [], [], [], []
    for source, indices in sorted(by_source.items()):
        order = torch.randperm(len(indices) * 16, generator=generator).tolist()
        seen: set[bytes] = set()
        for position in order:
            if len(seen) == per_source:
                break
            clip, frame = indices[position // 16], position % 16
            pixels = torch.as_tensor(dataset[clip]["video"][frame]).float()
            fingerprint = pixels.numpy().tobytes()
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            frames.append(pixels)
            ids.append(source)
            clips.append(clip)
            positions.append(frame)
    return {
        "frames": torch.stack(frames),
        "ids": torch.tensor(ids),
        "clip": torch.tensor(clips),
        "frame": torch.tensor(positions),
    }


def cached_frame_inversion(
    image_model: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    per_source: int,
    num_steps: int,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """:func:`sample_source_frames` of the held-out split plus their inverted maps ("maps"), cached."""
    key = json_digest(["frames", model_identity(image_model), per_source, num_steps, seed], 12)
    path = Path(cache_dir) / "inversion" / f"{key}.safetensors"
    if path.exists():
        return load_file(str(path))
    denoiser, config = load_denoiser(image_model)
    sampled = sample_source_frames(per_source, resolution=config.resolution, seed=seed, root=config.data_root)
    maps = invert_clips(denoiser, sampled["frames"][:, None], num_steps=num_steps, progress=progress)[:, 0]
    tensors = {**{k: v.contiguous() for k, v in sampled.items()}, "maps": maps.contiguous()}
    _save_atomic(tensors, path)
    return tensors


def source_similarity_table(vectors: torch.Tensor, source_ids: torch.Tensor) -> dict[str, dict]:
    """Table 1 over sampled frames: cosine similarity of every pair of distinct frames of the same
    source ("same_video") and of every pair across sources ("different_video"), mean +- std."""
    cos = cosine_similarity_matrix(vectors)
    upper = torch.triu(torch.ones_like(cos, dtype=torch.bool), diagonal=1)  # i < j: never a frame with itself
    same = source_ids[:, None] == source_ids[None, :]
    return {
        "same_video": _mean_std(cos[upper & same]),
        "different_video": _mean_std(cos[upper & ~same]),
        "num_sources": len(set(source_ids.tolist())),
        "iid_floor_std": 1.0 / math.sqrt(vectors[0].numel()),
    }


def table1_rows(sampled: dict[str, torch.Tensor], *, seed: int = 0) -> dict[str, dict]:
    """Table 1 for the inverted maps beside two controls the paper lacks, on the same frames and pairs:
    raw pixels (how much of the noise similarity is pixel similarity) and i.i.d. noise (the floor)."""
    iid = torch.randn(sampled["maps"].shape, generator=torch.Generator().manual_seed(seed))
    ids = sampled["ids"]
    return {
        "noise maps (inverted)": source_similarity_table(sampled["maps"], ids),
        "raw pixels": source_similarity_table(sampled["frames"], ids),
        "i.i.d. noise": source_similarity_table(iid, ids),
    }


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


# The gate a shipped image model must pass (issue targets): per-map variance within 1 +- 0.1,
# |mean| and |lag-1 spatial autocorrelation| <= 0.1, different-video cosine std <= 2x the i.i.d. floor.
GAUSSIANITY_TARGETS = {"mean": 0.1, "variance": 0.1, "autocorrelation": 0.1, "floor_ratio": 2.0}


def gaussianity(maps: torch.Tensor, *, different_video_std: float | None = None, targets=None) -> dict:
    """Do the inverted maps look like unit Gaussian noise? Per-map mean, variance and lag-1 spatial
    autocorrelation (averaged over maps, with their spread), and the different-video cosine std as a
    multiple of the i.i.d. floor 1/sqrt(C*H*W).

    An exact inversion of a well-trained model returns N(0, I)-like maps. Each statistic's sampling
    error is < 0.01 at these sizes, so missing a target means the model has not learned the data
    distribution well enough for its ODE to land in the prior, and Table 1 then says little.
    """
    targets = {**GAUSSIANITY_TARGETS, **(targets or {})}
    x = maps.double().reshape(-1, *maps.shape[-3:])  # one map per frame: (M, C, H, W)
    centred = x - x.mean(dim=(1, 2, 3), keepdim=True)
    power = centred.pow(2).mean(dim=(1, 2, 3))
    horizontal = (centred[..., :, 1:] * centred[..., :, :-1]).mean(dim=(1, 2, 3)) / power
    vertical = (centred[..., 1:, :] * centred[..., :-1, :]).mean(dim=(1, 2, 3)) / power
    per_map = {
        "mean": x.mean(dim=(1, 2, 3)),
        "variance": x.var(dim=(1, 2, 3)),
        "autocorrelation": (horizontal + vertical) / 2,
    }
    stats = {name: float(v.mean()) for name, v in per_map.items()}
    spread = {f"{name}_std": float(v.std()) if len(v) > 1 else 0.0 for name, v in per_map.items()}
    floor = 1.0 / math.sqrt(x[0].numel())
    problems = []
    if abs(stats["mean"]) > targets["mean"]:
        problems.append(f"mean {stats['mean']:.3f} is not within ±{targets['mean']} of 0")
    if abs(stats["variance"] - 1) > targets["variance"]:
        problems.append(f"variance {stats['variance']:.3f} is not within 1 ± {targets['variance']}")
    if abs(stats["autocorrelation"]) > targets["autocorrelation"]:
        problems.append(
            f"neighbouring pixels correlate ({stats['autocorrelation']:.3f}, target |r| ≤ "
            f"{targets['autocorrelation']}): the maps still show image structure"
        )
    ratio = None if different_video_std is None else different_video_std / floor
    if ratio is not None and ratio > targets["floor_ratio"]:
        problems.append(
            f"different-video similarity spreads {ratio:.1f}x the i.i.d. floor "
            f"(target ≤ {targets['floor_ratio']}x)"
        )
    message = (
        "the inverted maps look like unit Gaussian noise"
        if not problems
        else "; ".join(problems) + " -- either the image model is undertrained for this resolution or these "
        "frames are unlike what it was trained on (then the maps describe the model, not the footage; on the "
        "embedded data longer training moves unseen scenes further out, docs/pretrained.md); read the "
        "similarities as evidence only once the maps look Gaussian"
    )
    return {
        **stats,
        **spread,
        "num_maps": len(x),
        "iid_floor_std": floor,
        "floor_ratio": ratio,
        "targets": targets,
        "looks_gaussian": not problems,
        "message": message,
    }


# ----------------------------------------------------------------------------------------------
# Any video: `pyoco-lab invert` (frames of the user's files, inverted by a shipped image model)


def within_shot_similarity(maps: torch.Tensor, shots: torch.Tensor) -> dict[str, list[float]]:
    """Cosine similarity of frames i < j of one video vs their distance j - i, over pairs in the same shot.

    ``maps`` (F, C, H, W), ``shots`` (F,) shot index per frame. Distances are in frames *of the selection*
    (a stride of 2 makes distance 1 two source frames apart). ``count`` is the number of pairs.
    """
    cos = cosine_similarity_matrix(maps)
    f = len(maps)
    out = {"distance": [], "mean": [], "std": [], "sem": [], "count": []}
    for d in range(1, f):
        i = torch.arange(f - d)
        keep = shots[i] == shots[i + d]
        values = cos[i[keep], i[keep] + d]
        if values.numel() == 0:
            continue
        std = float(values.std()) if values.numel() > 1 else 0.0
        out["distance"].append(d)
        out["mean"].append(float(values.mean()))
        out["std"].append(std)
        out["sem"].append(std / math.sqrt(values.numel()))
        out["count"].append(int(values.numel()))
    return out


def video_inversion_report(maps: list[torch.Tensor], shots: list[torch.Tensor]) -> dict:
    """The numbers of ``pyoco-lab invert``: per video its within-shot similarity vs distance with the
    fitted mixed / progressive alpha, the similarity across shot cuts, and for several videos the
    between-video row; Gaussianity of all maps (with the between-video spread when there is one)."""
    videos = []
    for video_maps, video_shots in zip(maps, shots, strict=True):
        cos = cosine_similarity_matrix(video_maps)
        upper = torch.triu(torch.ones_like(cos, dtype=torch.bool), diagonal=1)
        same_shot = video_shots[:, None] == video_shots[None, :]
        curve = within_shot_similarity(video_maps, video_shots)
        fitted = (
            {
                kind: noise.fit_alpha(kind, curve["distance"], curve["mean"])
                for kind in ("mixed", "progressive")
            }
            if curve["distance"]
            else {}
        )
        videos.append(
            {
                "num_frames": len(video_maps),
                "num_shots": int(video_shots.max()) + 1,
                "within_shot": _mean_std(cos[upper & same_shot]),
                "across_cut": _mean_std(cos[upper & ~same_shot]) if (upper & ~same_shot).any() else None,
                "by_distance": curve,
                "fitted_alpha": fitted,
            }
        )
    report = {"videos": videos, "iid_floor_std": 1.0 / math.sqrt(maps[0][0].numel())}
    between_std = None
    if len(maps) > 1:
        flat = torch.cat(maps)
        owner = torch.cat([torch.full((len(m),), i) for i, m in enumerate(maps)])
        cos = cosine_similarity_matrix(flat)
        upper = torch.triu(torch.ones_like(cos, dtype=torch.bool), diagonal=1)
        report["between_videos"] = _mean_std(cos[upper & (owner[:, None] != owner[None, :])])
        between_std = report["between_videos"]["std"]
    report["gaussianity"] = gaussianity(torch.cat(maps), different_video_std=between_std)
    return report
