"""``pyoco-lab invert``: invert the frames of your own videos into noise maps, measure their correlation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from safetensors.torch import save_file

from pyoco_lab import media, noise, viz
from pyoco_lab.analysis import inversion, plots
from pyoco_lab.analysis.results import to_jsonable
from pyoco_lab.data import resize_center_crop, video_cuts
from pyoco_lab.data.video_io import read_frames
from pyoco_lab.devices import validate_device
from pyoco_lab.fileio import follow_umask, staged_folder
from pyoco_lab.training import load_denoiser

# The shipped model whose inversion of held-out frames meets the Gaussianity targets (docs/pretrained.md):
# the longer-trained lab-tiny-32-256k samples better but inverts unseen footage further from noise.
DEFAULT_MODEL = "pretrained:lab-tiny-32"
RECORD = "invert.json"  # what marks a folder as invert's own output (it may be replaced)
FILES = ("maps.safetensors", "frames_and_maps.png", "similarity.png", "similarity_vs_distance.png", RECORD)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invert",
        help="invert the frames of your videos into noise maps (eq. 2 backwards), measure their correlation",
        description=(
            "Read frames of each VIDEO (anything decord or PyAV decodes: mp4, avi, mpg, webm, ...), resize "
            "and centre-crop them to the image model's resolution, invert each frame independently with the "
            "image model's ODE (Section 4) and write to OUT: maps.safetensors (noise maps, frames, frame "
            "indices), frames_and_maps.png, similarity.png (cosine matrix), similarity_vs_distance.png (with "
            "the fitted mixed and progressive alpha) and invert.json (every number, Gaussianity included). "
            "Shot cuts are detected on every frame from the first to the last one read (whatever the stride) "
            "and pairs across a cut are reported apart; several videos also give the between-video row "
            "(Table 1 b). OUT is written whole or not at all, and an existing OUT is replaced only when it "
            "is invert's own earlier output (or with --overwrite). "
            "Example: pyoco-lab invert clip.mp4 --stride 2 --max-frames 16"
        ),
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video file(s)")
    parser.add_argument(
        "--image-model",
        default=DEFAULT_MODEL,
        help=f"pretrained:NAME or an image run folder (default: {DEFAULT_MODEL}; see `pyoco-lab pretrained "
        "list`)",
    )
    parser.add_argument("--start", type=int, default=0, help="first frame (default: 0)")
    parser.add_argument("--stop", type=int, default=None, help="stop before this frame (default: the end)")
    parser.add_argument("--stride", type=int, default=1, help="take every N-th frame (default: 1)")
    parser.add_argument("--max-frames", type=int, default=16, help="frames per video at most (default: 16)")
    parser.add_argument("--steps", type=int, default=32, help="ODE steps of the inversion (default: 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--out", default=None, help="output folder (default: ./inverted/<first video's name>)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUT that invert did not write (a training run is never replaced)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    device = validate_device(args.device)
    if args.steps < 2:
        raise ValueError(f"--steps must be at least 2, got {args.steps}")
    # Every file is read (and refused, naming it) before the model runs or anything is written.
    clips = [read_frames(v, start=args.start, stop=args.stop, stride=args.stride, max_frames=args.max_frames)
             for v in args.videos]  # fmt: skip
    denoiser, config = load_denoiser(args.image_model, ema=True, device=device)
    if config.phase != "image":
        raise ValueError(f"{args.image_model} is a video run; invert needs an image model (--image-model)")
    out = Path(args.out) if args.out else Path("inverted") / Path(args.videos[0]).stem
    # Entered before inverting: an OUT that is not ours, unwritable or being written fails in seconds.
    with staged_folder(out, marker=RECORD, files=FILES, overwrite=args.overwrite) as staging:
        frames, maps, shots, cuts = [], [], [], []
        for (raw, indices), path in zip(clips, args.videos, strict=True):
            # Cuts are judged on every frame the clip spans: frames a stride apart in a moving scene
            # differ as much as a cut does, so strided frames alone hide it (or invent one).
            starts = video_cuts(path, indices[0], indices[-1])
            shot = torch.as_tensor(np.searchsorted(starts, indices, side="right"))
            shot = torch.unique(shot, return_inverse=True)[1]  # a shot no read frame falls in is skipped
            video = resize_center_crop(raw, config.resolution)
            print(
                f"{path}: {len(raw)} frames, {int(shot.max()) + 1} shot(s), inverting at "
                f"{config.resolution}px ..."
            )
            maps.append(
                inversion.invert_clips(denoiser, video[None].to(device), num_steps=args.steps)[0].cpu()
            )
            frames.append(video)
            shots.append(shot)
            cuts.append([i for i in range(1, len(shot)) if shot[i] != shot[i - 1]])
        report = inversion.video_inversion_report(maps, shots)
        report["settings"] = {
            "image_model": str(args.image_model),
            "resolution": config.resolution,
            "inversion_steps": args.steps,
            "videos": [str(v) for v in args.videos],
            "frame_indices": [indices for _, indices in clips],
            "shots": [s.tolist() for s in shots],
            "cut_frames": [[indices[i] for i in c] for (_, indices), c in zip(clips, cuts, strict=True)],
        }
        _write_outputs(staging, report, frames, maps, clips, cuts)
    _print_summary(report, out)
    return 0


def _write_outputs(staging: Path, report: dict, frames, maps, clips, cuts) -> None:
    """maps.safetensors, the three figures (labelled in the videos' own frame numbers) and invert.json."""
    tensors = {}
    for i, (f, m, (_, indices)) in enumerate(zip(frames, maps, clips, strict=True)):
        tensors |= {
            f"maps{i}": m.contiguous(),
            f"frames{i}": f.contiguous(),
            f"indices{i}": torch.tensor(indices),
        }
    save_file(tensors, str(staging / "maps.safetensors"))
    follow_umask(staging / "maps.safetensors")
    names = [Path(v).name for v in report["settings"]["videos"]]
    rows, labels, columns, row_cuts = [], [], [], []
    for name, f, m, (_, indices), c in zip(names, frames, maps, clips, cuts, strict=True):
        rows += [media.to_uint8_frames(f), media.to_uint8_frames(m, value_range=(-3.0, 3.0))]
        labels += [f"{name}\nframes", "noise\nmaps"]
        columns += [[f"frame {i}" for i in indices]] * 2
        row_cuts += [c, c]
    fig = viz.image_grid_figure(
        rows,
        labels,
        columns,
        title="frames of each video and the noise maps they invert to (red: first frame of a new shot)",
        cuts=row_cuts,
        colorbar=("noise map value per RGB channel (σ)", -3.0, 3.0),
    )
    viz.save_figure(fig, staging / "frames_and_maps.png")
    plt.close(fig)
    starts = torch.tensor([len(m) for m in maps]).cumsum(0)
    boundaries = starts[:-1].tolist()
    offsets = [0, *boundaries]
    matrix = viz.figures.cosine_similarity_matrix(torch.cat(maps))
    fig = plots.cosine_matrix_figure(
        matrix,
        boundaries,
        frames=[i for _, indices in clips for i in indices],
        cuts=[offset + c for offset, video_cuts_ in zip(offsets, cuts, strict=True) for c in video_cuts_],
        title="cosine similarity of inverted noise maps"
        + (" (black lines: next video)" if boundaries else ""),
    )
    viz.save_figure(fig, staging / "similarity.png")
    plt.close(fig)
    first, (_, indices) = report["videos"][0], clips[0]
    if first["by_distance"]["distance"]:
        distances = first["by_distance"]["distance"]
        step = indices[1] - indices[0]
        per = f" per {step} frames" if step > 1 else ""
        fits = {
            f"{kind} fit α={alpha:.2f}{per}": [
                float(noise.frame_correlation(kind, max(distances) + 1, alpha)[0, d]) for d in distances
            ]
            for kind, alpha in first["fitted_alpha"].items()
        }
        fig = plots.similarity_by_distance_figure(distances, first["by_distance"], fits, frame_step=step)
        fig.axes[0].set_title(f"{names[0]}: pairs within one shot", fontsize=9)
        viz.save_figure(fig, staging / "similarity_vs_distance.png")
        plt.close(fig)
    (staging / RECORD).write_text(json.dumps(to_jsonable(report), indent=2) + "\n")


def _print_summary(report: dict, out: Path) -> None:
    floor = report["iid_floor_std"]
    for path, video in zip(report["settings"]["videos"], report["videos"], strict=True):
        within = video["within_shot"]
        line = (
            f"{path}: within-shot similarity {within['mean']:.3f} ± {within['std']:.3f} "
            f"({within['count']} pairs)"
        )
        if video["across_cut"]:
            line += f", across cuts {video['across_cut']['mean']:.3f} ({video['num_shots']} shots)"
        if video["fitted_alpha"]:
            line += ", fitted α: " + ", ".join(f"{k} {a:.2f}" for k, a in video["fitted_alpha"].items())
        print(line)
    if "between_videos" in report:
        between = report["between_videos"]
        print(f"between videos: {between['mean']:.3f} ± {between['std']:.3f} (i.i.d. floor 0 ± {floor:.3f})")
    print(
        ("maps look Gaussian: " if report["gaussianity"]["looks_gaussian"] else "warning: ")
        + report["gaussianity"]["message"]
    )
    for name in FILES:
        if (out / name).exists():
            print(f"  {out / name}")
