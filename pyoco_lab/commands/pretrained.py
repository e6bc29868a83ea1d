"""``pyoco-lab pretrained list | verify | export``: the image models that ship with the lab.

``export`` turns a finished image run (made by ``pyoco-lab train --phase image``) into a shipped
model: its EMA weights go to ``pyoco_lab/weights/NAME.safetensors`` and the registry records the
sha256, the config, and the recipe (command, steps, seed, data, wall time, machine, commit).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
from pathlib import Path

from safetensors.torch import load_file

from pyoco_lab.training import checkpoints, pretrained


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrained",
        help="list, verify or export the pretrained image models that ship with the lab",
        description="Examples: pyoco-lab pretrained list; pyoco-lab pretrained verify; "
        "pyoco-lab pretrained export runs/pretrained/lab-tiny-32 lab-tiny-32 --command '...'",
    )
    sub = parser.add_subparsers(dest="pretrained_command", metavar="ACTION")
    listing = sub.add_parser("list", help="shipped models: name, sha256, recipe, measured quality")
    listing.set_defaults(func=run_list)
    check = sub.add_parser("verify", help="check every shipped weights file against its recorded sha256")
    check.set_defaults(func=run_verify)
    export = sub.add_parser("export", help="ship the EMA weights of a finished image run under a name")
    export.add_argument("run", help="image run folder written by `pyoco-lab train --phase image`")
    export.add_argument("name", help="the name to load it by (pretrained:NAME)")
    export.add_argument("--command", required=True, help="the exact command that re-creates the run")
    export.set_defaults(func=run_export)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    models = pretrained.registry()
    if not models:
        print("this installation ships no pretrained models")
    for model in models.values():
        config, recipe = model.train_config, model.recipe
        print(
            f"{pretrained.PREFIX}{model.name}: {config.model} at {config.resolution}px, "
            f"sha256 {model.sha256[:16]}"
        )
        print(f"  recipe: {recipe.get('command', '?')}")
        print(
            f"  {recipe.get('steps', '?')} steps, batch {config.batch_size}, seed {config.seed}, "
            f"{recipe.get('wall_seconds', '?')} s on {recipe.get('machine', '?')} "
            f"(commit {recipe.get('commit', '?')})"
        )
        for key, value in model.quality.items():
            print(f"  {key}: {value}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    for model in pretrained.registry().values():
        pretrained.verify(model)
        print(f"ok: {pretrained.PREFIX}{model.name} ({model.path.name}, sha256 {model.sha256[:16]})")
    return 0


def _wall_seconds(run: Path) -> float:
    """Training time of a run, summed over its log (resumed parts included)."""
    with open(run / "log.csv") as handle:
        return round(sum(float(row["elapsed_s"]) for row in csv.DictReader(handle)), 1)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_export(args: argparse.Namespace) -> int:
    run = Path(args.run)
    checkpoint, run_dir = checkpoints.resolve_checkpoint(run)
    checkpoints.verify_checkpoint(checkpoint, full=True)
    meta = checkpoints.read_run_meta(run_dir)
    config = checkpoints.load_config(run_dir)
    step = checkpoints.checkpoint_step(checkpoint)
    recipe = {
        "command": args.command,
        "steps": step,
        "seed": config.seed,
        "data": f"{config.dataset} train split, {config.resolution}px frames",
        "wall_seconds": _wall_seconds(run_dir),
        "commit": _commit(),
    }
    weights = load_file(str(checkpoint / checkpoints.EMA_FILE))
    model = pretrained.export(
        weights, args.name, config, num_classes=int(meta.get("num_classes", 0)), recipe=recipe
    )
    print(f"shipped {pretrained.PREFIX}{model.name}: {model.path} (sha256 {model.sha256})")
    return 0
