"""``pyoco-lab train``: image pre-training and video finetuning (a face over :mod:`pyoco_lab.training`).

One option per TrainConfig field is generated from the dataclass, so every preset value can be
overridden from the command line and ``--help`` lists them all with their meaning.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields

from pyoco_lab import training


def _add_field_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("overrides of preset values (default: the preset's)")
    defaults = training.TrainConfig()
    for f in fields(training.TrainConfig):
        if f.name == "phase":
            continue  # a top-level option below
        default = getattr(defaults, f.name)
        option = "--" + f.name.replace("_", "-")
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS, "help": f.metadata["help"]}
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        else:
            kwargs["metavar"] = f.name.upper()
        if isinstance(default, bool):
            kwargs.pop("metavar", None)
            group.add_argument(option, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        # float('inf') parses "inf", so --alpha inf works.
        kwargs["type"] = type(default) if default is not None else str
        group.add_argument(option, **kwargs)


def register(subparsers) -> None:
    presets = "; ".join(f"{name}: {p.description}" for name, p in training.PRESETS.items())
    parser = subparsers.add_parser(
        "train",
        help="pre-train an image model or finetune a video model with a noise prior",
        description=(
            "Train with a preset, overriding any value. Image pre-training, then video finetuning with "
            "--noise/--alpha (Section 5, A.3). Multi-GPU: launch the same command with "
            "`torchrun --nproc_per_node N -m pyoco_lab.cli train ...`."
        ),
        epilog=f"presets -- {presets}",
    )
    parser.add_argument("--preset", default="quick", choices=tuple(training.PRESETS), help="starting values")
    parser.add_argument(
        "--phase",
        default="image",
        choices=("image", "video"),
        help="image: pre-train on frames; video: finetune (--init) or train from scratch (--from-scratch)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="run folder (config, logs, samples, checkpoints); default: $PYOCO_RUNS or runs/, named after "
        "preset, phase and prior (e.g. runs/quick-image, runs/quick-video-progressive-a2)",
    )
    parser.add_argument(
        "--init",
        default=None,
        help="video phase: image run folder, checkpoint or pretrained:NAME to inflate (--stage "
        "interpolation: the base video run to start from, A.1 (6)); 'auto' = the shipped image model "
        "that fits, else this preset's image run (runs/PRESET-image). Image phase: an image model of the "
        "same architecture to continue from (its EMA weights, a fresh optimiser: e.g. when a long run's "
        "folder was lost)",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="video phase: train the video model from random weights (the baseline of Table 5) instead "
        "of from --init; one of the two is required",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its newest checkpoint"
    )
    parser.add_argument(
        "--optimizer-preset",
        default=None,
        choices=tuple(training.OPTIMIZER_PRESETS),
        help="apply the paper's optimiser settings (A.3 for UCF, Table F for large-scale)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    _add_field_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = {f.name for f in fields(training.TrainConfig)} - {"phase"}
    overrides = {name: getattr(args, name) for name in names if hasattr(args, name)}
    config = training.preset_config(
        args.preset, args.phase, optimizer_preset=args.optimizer_preset, **overrides
    )
    if args.print_config:
        print(json.dumps(asdict(config), indent=2))
        return 0
    init = args.init
    if init == "auto":  # the shipped image model that fits, else this preset's own image run
        init = training.pretrained.default_for(config) or str(
            training.default_runs_root() / f"{args.preset}-image"
        )
    if args.from_scratch and init:
        raise ValueError("--init and --from-scratch contradict each other; pass one of them")
    if args.from_scratch and config.phase != "video":
        raise ValueError(
            "--from-scratch is for --phase video (image pre-training always starts from scratch)"
        )
    if config.phase == "video" and not init and not args.from_scratch:
        hint = training.default_runs_root() / f"{args.preset}-image"
        raise ValueError(
            "--phase video needs --init (finetune a trained model: --init auto = the shipped image model "
            f"or {hint}, or --init RUN_DIR) or --from-scratch (the baseline of Table 5)"
        )
    out = args.out or str(
        training.default_runs_root() / training.default_run_name(args.preset, config, init=bool(init))
    )
    try:
        run_dir = training.train(
            config, out, init=init, resume=args.resume, progress=args.progress, command=args.command_line
        )
    except training.TrainingDiverged as error:
        print(f"pyoco-lab train: stopped: {error}", file=sys.stderr)
        return 1
    checkpoint = training.latest_checkpoint(run_dir)
    if training.DistEnv.from_env().is_main:
        print(f"run finished: {run_dir} (checkpoint {checkpoint})")
    return 0
