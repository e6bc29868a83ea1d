"""``pyoco-lab evaluate``: sample from a trained video run and print every available metric."""

from __future__ import annotations

import argparse

from pyoco_lab import training
from pyoco_lab.commands._sampling import add_sampler_arguments, sampler_options
from pyoco_lab.devices import validate_device
from pyoco_lab.evaluation import EVAL_FILE, evaluate_run, format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="sample from a trained run; print lab metrics, the paper's metrics and temporal statistics",
        description=(
            "Sample from a run's EMA weights with its noise prior, score the samples and held-out real "
            "clips against the train split, print a table and store it in <run>/eval.json. The paper's "
            "FVD/IS/FID-frame need local weight files (see docs/metrics.md) and are skipped, by name, "
            "without them. "
            "Example: pyoco-lab evaluate runs/quick-video --num-samples 64"
        ),
    )
    parser.add_argument(
        "run",
        metavar="RUN_OR_CHECKPOINT",
        help="run folder (its newest checkpoint) or one checkpoint folder (RUN/checkpoints/step-...)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=64, help="videos to generate (paper: 2048; default 64)"
    )
    add_sampler_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=16, help="videos per sampling batch (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise and real subsets")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (cuda if available, else cpu), cpu, cuda or cuda:N (default: auto)",
    )
    parser.add_argument(
        "--weights-dir",
        default=None,
        help="folder of i3d/c3d/inception files (default: $PYOCO_WEIGHTS or data/weights)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; do not update <run>/eval.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    validate_device(args.device)  # at the door: before the run, the data or any weights are read
    if args.steps < 1 or args.batch_size < 1:
        raise ValueError("--steps and --batch-size must be at least 1")
    if training.pretrained.is_pretrained(args.run):  # the library's store_dir= is no option of this command
        raise ValueError(
            f"{args.run} is a shipped model with no run folder to keep eval.json in; evaluate a run folder "
            f"of `pyoco-lab train` instead (e.g. one finetuned with --phase video --init {args.run})"
        )
    results = evaluate_run(
        args.run,
        args.num_samples,
        args.sampler,
        args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        weights_dir=args.weights_dir,
        write=not args.no_write,
        sampler_options=sampler_options(args),
    )
    settings = results["settings"]
    print(
        f"{settings['checkpoint']}: {settings['num_samples']} samples, {settings['sampler']} "
        f"{settings['num_steps']} steps, {settings['noise']} noise alpha={settings['alpha']}, "
        f"{settings['num_frames']} frames at {settings['resolution']}px"
    )
    print(format_table(results))
    print(
        "FVD-lab / IS-lab / FD-frame-lab rank runs within this lab only; FVD / IS / FID-frame follow "
        "the paper's protocol."
    )
    if not args.no_write:
        print(f"wrote {settings['run']}/{EVAL_FILE} [{settings['key']}]")
    return 0
