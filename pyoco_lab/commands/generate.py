"""``pyoco-lab generate``: sample videos from a trained run and write them as MP4, GIF and a contact sheet."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from pyoco_lab import media, noise, viz
from pyoco_lab.analysis.results import to_jsonable
from pyoco_lab.commands._sampling import (
    add_reinit_arguments,
    add_sampler_arguments,
    reinit_options,
    sampler_options,
)
from pyoco_lab.devices import validate_device
from pyoco_lab.fileio import staged_folder
from pyoco_lab.sampling import sample_videos
from pyoco_lab.training import default_runs_root, load_denoiser, pretrained, resolve_checkpoint

RECORD = "generate.json"  # what marks a folder as generate's own output (it may be replaced)
FILES = ("samples.mp4", "samples.gif", "contact_sheet.png", RECORD)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="sample videos from a trained run (its own noise prior by default) into MP4, GIF and a PNG",
        description=(
            "Sample --num videos from a run's EMA weights with the run's own noise prior (or "
            "--noise/--alpha), and write OUT/samples.mp4 and samples.gif (the videos side by side, looping "
            "in sync), OUT/contact_sheet.png (a row per video labelled with its prior, alpha and seed, a "
            "column per numbered frame) and OUT/generate.json (what made them). OUT defaults to "
            "RUN/generated/<prior>-a<alpha>-<sampler><steps>[-reinit<N>]-seed<seed> (e.g. "
            "mixed-a1-heun18-seed0); it is "
            "written whole or not at all, and an existing OUT is replaced only when it is generate's own "
            "earlier output (or with --overwrite). "
            "Example: pyoco-lab generate runs/quick-video --num 8 --alpha 1 --noise mixed"
        ),
    )
    parser.add_argument(
        "run",
        metavar="RUN_OR_CHECKPOINT",
        help="video run folder, one of its checkpoints, or a shipped video model pretrained:NAME (the "
        "alpha zoo: `pyoco-lab pretrained list`; its videos go to runs/generated/NAME/ unless --out)",
    )
    parser.add_argument("--num", type=int, default=4, help="videos to sample (default: 4)")
    parser.add_argument(
        "--noise", choices=noise.KINDS, default=None, help="noise prior (default: the run's own)"
    )
    parser.add_argument("--alpha", type=float, default=None, help="prior alpha (default: the run's own)")
    parser.add_argument(
        "--training-prior",
        action="store_true",
        help="a shipped model that records another sampling prior (`pretrained list`: 'samples with') is "
        "sampled with that by default; this samples it with the prior it was trained with instead",
    )
    add_sampler_arguments(parser, sampler="heun", steps=18)
    add_reinit_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (default: 0)")
    parser.add_argument("--batch-size", type=int, default=16, help="videos per sampling batch (default: 16)")
    parser.add_argument(
        "--fps", type=float, default=8.0, help="frames per second of the MP4/GIF (default: 8)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: RUN/generated/<prior>-a<alpha>-<sampler><steps>[-reinit<N>]-seed<seed>)",  # noqa: E501
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUT that generate did not write (a training run is never replaced)",
    )
    parser.set_defaults(func=run)


def _prior(config, kind: str | None, alpha: float | None) -> noise.NoisePrior:
    """The run's prior, with --noise / --alpha replacing its parts (alpha 0 when switching to iid)."""
    own = config.prior
    kind = kind or own.kind
    if alpha is None:
        alpha = own.alpha if kind == own.kind else (0.0 if kind == "iid" else 1.0)
    if kind == "iid" and alpha != 0.0:
        raise ValueError(f"--alpha {alpha:g} with --noise iid: i.i.d. noise has no alpha; drop --alpha")
    if math.isnan(alpha) or alpha < 0:
        raise ValueError(f"--alpha must be >= 0 (or inf), got {alpha}")
    return noise.NoisePrior(kind, alpha)


def contact_sheet_figure(videos, prior: noise.NoisePrior, *, seed: int, how: str = ""):
    """A row per video (N, F, C, H, W) in [-1, 1], a column per frame, each row labelled with the prior,
    alpha and seed that drew it and each column with its frame number, so a sheet copied out of its
    folder still says what it shows."""
    alpha = "∞" if math.isinf(prior.alpha) else f"{prior.alpha:g}"
    frames = len(videos[0])
    rows = [media.to_uint8_frames(video) for video in videos]
    # One --seed draws the whole batch: video i is the i-th draw of that seed's generator.
    labels = [f"video {i}\n{prior.kind}\nα = {alpha}\nseed {seed}" for i in range(len(videos))]
    columns = [[f"frame {f}" for f in range(frames)]] * len(videos)
    title = f"{len(videos)} samples, {prior.kind} noise α = {alpha}, seed {seed}" + (
        f" ({how})" if how else ""
    )
    # 1.1 inch a frame at save_figure's 110 dpi: ~120 px, a 16-32 px frame enlarged 4-8x, pixels kept sharp.
    return viz.image_grid_figure(rows, labels, columns, title=title, cell=1.1)


def run(args: argparse.Namespace) -> int:
    device = validate_device(args.device)
    if args.num < 1 or args.batch_size < 1 or not args.fps > 0:
        raise ValueError("--num and --batch-size must be at least 1 and --fps positive")
    options = sampler_options(args)
    reinit = reinit_options(args)
    if pretrained.is_pretrained(args.run):
        if pretrained.get(args.run).train_config.phase != "video":
            zoo = ", ".join(pretrained.PREFIX + m.name for m in pretrained.current_models(phase="video"))
            raise ValueError(
                f"{args.run} is a shipped image model; generate samples a video model: one of the alpha "
                f"zoo ({zoo or 'none shipped'}), or finetune one (pyoco-lab train --phase video --init "
                f"{args.run} --out RUN) and pass RUN"
            )
        # a shipped model has no run folder: its videos go under the runs root, by model name
        checkpoint, videos_dir = args.run, default_runs_root() / "generated" / pretrained.get(args.run).name
    else:
        checkpoint, run_dir = resolve_checkpoint(args.run)
        videos_dir = run_dir / "generated"
    denoiser, config = load_denoiser(checkpoint, ema=True, device=device)
    if config.phase != "video":
        raise ValueError(f"{args.run} is an image run; generate samples video runs (finetune one first)")
    prior = _prior(config, args.noise, args.alpha)
    prior_from = "--noise/--alpha" if args.noise or args.alpha is not None else "training prior"
    recorded = pretrained.recorded_sampling_prior(args.run)
    if recorded is not None and not (args.training_prior or args.noise or args.alpha is not None):
        prior, prior_from = recorded, "recorded sampling prior"
        print(
            f"sampling {args.run} with its recorded sampling prior {prior.kind}, alpha {prior.alpha:g} "
            f"(trained with {config.prior.kind}, alpha {config.prior.alpha:g}: --training-prior for that); "
            f"chosen by {pretrained.get(args.run).sampling.get('chosen_by', '?')}"
        )
    how = f"{args.sampler}{args.steps}" + (f"-{reinit.label}" if reinit else "")
    name = f"{prior.kind}-a{noise.alpha_name(prior.alpha)}-{how}-seed{args.seed}"
    out = Path(args.out) if args.out else videos_dir / name
    # Entered before sampling: an OUT that is not ours, unwritable or being written fails in seconds.
    with staged_folder(out, marker=RECORD, files=FILES, overwrite=args.overwrite) as staging:
        videos = sample_videos(
            denoiser,
            prior,
            (config.num_frames, 3, config.resolution, config.resolution),
            args.num,
            sampler=args.sampler,
            num_steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
            device=device,
            sampler_options=options,
            reinit=reinit,
            progress=True,
        )
        grid = torch.as_tensor(media.tile_videos(list(videos))).permute(0, 3, 1, 2)  # (F, 3, H, W) uint8
        for suffix in (".mp4", ".gif"):
            media.save_video(grid, staging / f"samples{suffix}", fps=args.fps, value_range=(0, 255))
        how_text = f"{args.sampler}, {args.steps} steps" + (f", {reinit.label}" if reinit else "")
        fig = contact_sheet_figure(videos, prior, seed=args.seed, how=how_text)
        viz.save_figure(fig, staging / "contact_sheet.png")
        plt.close(fig)
        record = {
            "checkpoint": str(checkpoint),
            "prior": {"kind": prior.kind, "alpha": to_jsonable(prior.alpha)},  # a number, "inf" for inf
            "run_prior": {"kind": config.prior.kind, "alpha": to_jsonable(config.prior.alpha)},
            "prior_from": prior_from,  # the training prior, a shipped model's recorded one, or the flags
            "sampler": args.sampler,
            "steps": args.steps,
            "sampler_options": options,
            "reinit": reinit.record() if reinit else None,
            "seed": args.seed,
            "num": args.num,
            "shape": list(videos.shape),
        }
        (staging / RECORD).write_text(json.dumps(to_jsonable(record), indent=2, allow_nan=False) + "\n")
    print(f"{args.num} videos ({prior.kind} noise, alpha {noise.alpha_name(prior.alpha)}; {how_text}) ->")
    for file in FILES:
        print(f"  {out / file}")
    return 0
