"""``pyoco-lab pretrained list | verify | export | measure | curve``: the image models that ship with the lab.

``export`` turns a finished image run (made by ``pyoco-lab train --phase image``) into a shipped
model: its EMA weights go to ``pyoco_lab/weights/NAME.safetensors`` and the registry records the
sha256, the config, and the recipe (command, steps, seed, data, wall time, machine, commit).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from safetensors.torch import load_file

from pyoco_lab import provenance, viz
from pyoco_lab.analysis import experiments, image_model, run_records
from pyoco_lab.analysis.sampling_priors import prior_name
from pyoco_lab.commands._sampling import add_sampler_arguments, sampler_options
from pyoco_lab.fileio import atomic_write_text, check_output_folder, read_json
from pyoco_lab.training import checkpoints, pretrained
from pyoco_lab.viz.explorer import SHIPPED_VIDEOS_DIR, ship_zoo_videos


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrained",
        help="list, verify or export the pretrained models that ship with the lab (image models, alpha zoo)",
        description="Examples: pyoco-lab pretrained list; pyoco-lab pretrained verify; "
        "pyoco-lab pretrained export runs/pretrained/lab-tiny-32 lab-tiny-32 --command '...'",
    )
    sub = parser.add_subparsers(dest="pretrained_command", metavar="ACTION")
    listing = sub.add_parser(
        "list",
        help="shipped models as a table (name, what it is, prior, sampling prior, size, steps, quality); "
        "--long: each one's sha256, recipe, history and every measured number",
    )
    listing.add_argument(
        "--long", action="store_true", help="every model's recipe, history and measured quality in full"
    )
    listing.set_defaults(func=run_list)
    check = sub.add_parser("verify", help="check every shipped weights file against its recorded sha256")
    check.set_defaults(func=run_verify)
    export = sub.add_parser(
        "export", help="ship the EMA weights of a finished image run or video finetune under a name"
    )
    export.add_argument(
        "run",
        help="run or checkpoint folder written by `pyoco-lab train`: an image run, or a video finetune for "
        "the alpha zoo (a checkpoint of a constant-rate run ships as a run of that many steps)",
    )
    export.add_argument("name", help="the name to load it by (pretrained:NAME)")
    export.add_argument("--command", required=True, help="the exact command that re-creates the run")
    export.add_argument(
        "--why",
        default=None,
        metavar="TEXT",
        help="how the recipe was chosen (the study or runs that chose it), shown by `pretrained list`",
    )
    export.add_argument(
        "--record",
        default=None,
        metavar="JSON",
        help="a committed run record (figures/PRESET/runs/*.json) holding an evaluation of exactly these "
        "weights (same step and sha256): its motion-ratio and verdict metrics, with intervals, become the "
        "model's measured quality (the alpha zoo)",
    )
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a model shipped under NAME",
    )
    export.add_argument(
        "--supersedes",
        default=None,
        metavar="OLD",
        help="a shipped model this one replaces (menus list it last; OLD stays loadable); when OLD is the "
        "default for --init auto, this one becomes it",
    )
    export.add_argument(
        "--default",
        action="store_true",
        help="make it the default for --init auto of its model, resolution, conditioning and data (an export "
        "never changes the default otherwise)",
    )
    export.set_defaults(func=run_export)
    measure = sub.add_parser(
        "measure",
        help="measure a shipped model (yardsticks with every control, inversion Gaussianity); record it",
        description="Sample a shipped model, score the samples against training frames with the frame "
        "yardsticks beside every control, invert held-out frames and test their Gaussianity (notebook 02's "
        "measurements), print them and store them in the registry. Use a seed the model was not chosen "
        "on (the curve uses seed 0). Example: pyoco-lab pretrained measure lab-tiny-32 --seed 1",
    )
    measure.add_argument("name", help="a shipped model (NAME or pretrained:NAME)")
    measure.add_argument("--num-samples", type=int, default=512, help="samples (default 512)")
    add_sampler_arguments(measure, sampler="deis", steps=6)
    measure.add_argument(
        "--inversion-steps", type=int, default=24, help="ODE steps of the inversion (default 24)"
    )
    measure.add_argument(
        "--seed", type=int, default=1, help="seed of the samples and real subsets (default 1)"
    )
    measure.add_argument("--cache-dir", default=None, help="default: <runs>/reproduce")
    measure.add_argument("--no-write", action="store_true", help="print only; leave the registry as it is")
    measure.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    measure.set_defaults(func=run_measure)
    curve = sub.add_parser(
        "curve",
        help="measure every kept checkpoint of image runs: quality against images seen (choose a recipe)",
        description="Score every kept checkpoint of each image run with the frame yardsticks (samples vs "
        "training frames, no controls: they do not depend on the model) and the Gaussianity of its "
        "inversion of held-out frames; write OUT/curve.json and OUT/curve.png. Re-running on the same OUT "
        "adds new checkpoints and keeps the points of checkpoints that are gone (each point is cached). "
        "Example: pyoco-lab pretrained curve runs/image32/tiny runs/image32/lab-l "
        "--out figures/pretrained/curve-32",
    )
    curve.add_argument(
        "runs", nargs="+", metavar="RUN", help="image run folders of `pyoco-lab train --phase image`"
    )
    curve.add_argument(
        "--out", required=True, help="folder for curve.json and curve.png (this command's own)"
    )
    curve.add_argument("--num-samples", type=int, default=512, help="samples per checkpoint (default 512)")
    add_sampler_arguments(curve, sampler="deis", steps=6)
    curve.add_argument(
        "--inversion-steps", type=int, default=24, help="ODE steps of the inversion (default 24)"
    )
    curve.add_argument("--seed", type=int, default=0, help="seed of the samples and the real subsets")
    curve.add_argument("--raw-weights", action="store_true", help="measure each checkpoint's raw weights too")
    curve.add_argument(
        "--cache-dir",
        default=None,
        help="where points are cached (default: <runs>/reproduce, shared with notebooks)",
    )
    curve.add_argument(
        "--overwrite", action="store_true", help="replace an --out folder this command did not write"
    )
    curve.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    curve.set_defaults(func=run_curve)
    videos = sub.add_parser(
        "zoo-videos",
        help="sample the explorer zoo tab's default view (every shipped video model, seeds 0-2, DEIS 6) "
        "into the folder shipped beside the weights, so a fresh clone's zoo tab shows videos at once",
    )
    videos.add_argument(
        "--out", default=str(SHIPPED_VIDEOS_DIR), help="folder of the videos (default: %(default)s)"
    )
    videos.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    videos.set_defaults(func=run_zoo_videos)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


MIN_SAMPLES = 16  # fewer samples than this give the yardsticks nothing to measure


def _check_measure_counts(args: argparse.Namespace) -> None:
    """--num-samples and --inversion-steps of measure and curve, refused before any model is loaded."""
    if args.num_samples < MIN_SAMPLES:
        raise ValueError(
            f"--num-samples {args.num_samples} is too few for the yardsticks (at least {MIN_SAMPLES}); use "
            "256 or more"
        )
    if args.inversion_steps < 2:
        raise ValueError(f"--inversion-steps must be at least 2, got {args.inversion_steps}")


def run_measure(args: argparse.Namespace) -> int:
    model = pretrained.get(args.name)  # an unknown name is refused before any work
    source = pretrained.PREFIX + model.name
    if model.train_config.phase != "image":
        raise ValueError(
            f"{source} is a video model (the alpha zoo: its quality comes from its run record, `pretrained "
            "export --record`); measure measures the shipped image models: "
            + ", ".join(pretrained.PREFIX + m.name for m in pretrained.current_models())
        )
    _check_measure_counts(args)
    options = sampler_options(args)
    cache = Path(args.cache_dir) if args.cache_dir else checkpoints.default_runs_root() / "reproduce"
    quality = image_model.image_model_quality(
        source,
        cache,
        num_samples=args.num_samples,
        sampler=args.sampler,
        num_steps=args.steps,
        sampler_options=options,
        seed=args.seed,
        progress=args.progress,
    )
    gauss = image_model.inversion_quality(
        source, cache, num_steps=args.inversion_steps, seed=args.seed, progress=args.progress
    )
    options_text = "".join(f", {k} {v}" for k, v in options.items())
    measured_by = (
        f"pyoco-lab pretrained measure (image_model.image_model_quality, the code of notebook 02) at "
        f"{model.train_config.resolution} px, {args.sampler} {args.steps} steps{options_text}, "
        f"{args.num_samples} samples, seed {args.seed}, commit {provenance.git_commit()}, "
        f"{provenance.utc_now()[:10]}"
    )
    record = {**image_model.registry_quality(quality, measured_by), **image_model.registry_inversion(gauss)}
    for key, value in record.items():
        print(f"{key}: {value}")
    for row, scores in quality["rows"].items():
        print(
            f"  {row}: "
            + ", ".join(
                f"{m} {scores[m]:.3f}"
                for m in ("KID-app", "C2ST-frame", "precision-app", "recall-app")
                if m in scores
            )
        )
    if not args.no_write:
        pretrained.record_quality(model.name, record)
        print(f"recorded in {pretrained.WEIGHTS_DIR / pretrained.REGISTRY_FILE} ({source})")
    return 0


def run_curve(args: argparse.Namespace) -> int:
    out = Path(args.out)
    names = tuple(f"samples-{Path(run).resolve().name}.png" for run in args.runs)
    previous_names = ()
    if (out / CURVE_FILE).is_file():
        previous_names = tuple(
            f"samples-{n}.png" for n in read_json(out / CURVE_FILE, "curve").get("runs", {})
        )
    check_output_folder(
        out, marker=CURVE_FILE, files=(CURVE_FIGURE, *names, *previous_names), overwrite=args.overwrite
    )
    _check_measure_counts(args)
    options = sampler_options(args)
    for run in args.runs:  # every run checked at the door, before any model is loaded
        config = checkpoints.load_config(checkpoints.resolve_checkpoint(run)[1])
        if config.phase != "image":
            raise ValueError(f"{run} is a {config.phase} run; the curve measures image runs (--phase image)")
    previous = None
    if (out / CURVE_FILE).is_file() and not args.overwrite:
        previous = read_json(out / CURVE_FILE, "images-seen curve")
    cache = Path(args.cache_dir) if args.cache_dir else checkpoints.default_runs_root() / "reproduce"
    started = time.monotonic()
    curve, pictures = image_model.images_seen_curve(
        args.runs,
        cache,
        raw_weights=args.raw_weights,
        previous=previous,
        progress=args.progress,
        num_samples=args.num_samples,
        sampler=args.sampler,
        num_steps=args.steps,
        sampler_options=options,
        inversion_steps=args.inversion_steps,
        seed=args.seed,
    )
    curve["measured_by"] = {
        "command": args.command_line,
        "commit": provenance.git_commit(),
        "wall_seconds": round(time.monotonic() - started, 1),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CURVE_FILE, json.dumps(curve, indent=1) + "\n")
    viz.save_figure(
        image_model.images_seen_figure(curve, title=f"{out.name}: quality against images seen"),
        out / CURVE_FIGURE,
    )
    for name, by_step in pictures.items():
        title = f"{curve['runs'][name]['label']}: the same noise at every checkpoint (EMA weights)"
        figure = image_model.samples_by_checkpoint_figure(by_step, title=title)
        viz.save_figure(figure, out / f"samples-{name}.png")
    for name, entry in curve["runs"].items():
        for point in entry["points"]:
            print(f"{name}: {curve_line(point)}")
    print(f"wrote {out / CURVE_FILE} and {out / CURVE_FIGURE}")
    return 0


CURVE_FILE, CURVE_FIGURE = "curve.json", "curve.png"


def curve_line(point: dict) -> str:
    """One checkpoint's measures on one line."""
    nan = float("nan")
    text = (
        f"step {point['step']} ({point['images_seen']:,} images, {point['weights']} weights): "
        f"KID-app {point['KID-app']:.3f}, C2ST {point.get('C2ST-frame', nan):.3f}, "
        f"precision {point.get('precision-app', nan):.2f}, recall {point.get('recall-app', nan):.2f}"
    )
    if "variance" in point:
        text += f", inversion variance {point['variance']:.2f}, lag-1 {point['autocorrelation']:.2f}"
    return text


def run_zoo_videos(args: argparse.Namespace) -> int:
    """Adds keyed clips to ``--out`` (a clip already there is kept, never replaced)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; pass a folder for the zoo videos")
    written, kept = ship_zoo_videos(out, seeds=args.seeds)
    print(f"{written} clips sampled into {out}, {kept} already there")
    return 0


def run_list(args: argparse.Namespace) -> int:
    models = [*pretrained.current_models(), *pretrained.current_models(phase="video")]
    if not models:
        print("this installation ships no pretrained models")
    elif args.long:
        _print_long(models)
    else:
        print(_table(models))
        reasons: dict[str, list[str]] = {}  # one line per reason: a zoo's models share their recipe's
        for model in models:
            if model.recipe.get("chosen_by") and not model.superseded_by:
                reasons.setdefault(model.recipe["chosen_by"], []).append(pretrained.PREFIX + model.name)
        for reason, names in reasons.items():
            print(f"\n{', '.join(names)}: recipe chosen by {reason}")
        print(
            "\n* superseded: still loads by name (results name it), menus list it last. "
            "`pyoco-lab pretrained list --long`: every model's sha256, recipe, history and numbers."
        )
    return 0


def _table(models: list[pretrained.PretrainedModel]) -> str:
    """One line per model: name, what it is, what it was trained and samples with, size, quality."""
    header = (
        "name",
        "kind",
        "trained with",
        "samples with",
        "size",
        "steps",
        "measured (its default sampling)",
    )
    rows = [header] + [_summary_row(model) for model in models]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _summary_row(model: pretrained.PretrainedModel) -> tuple[str, ...]:
    config, quality = model.train_config, model.quality
    name = f"{pretrained.PREFIX}{model.name}{' *' if model.superseded_by else ''}"
    size = f"{config.model} {config.resolution}px"
    steps = str(model.recipe.get("steps", "?"))
    if config.phase == "image":
        kid = quality.get("yardsticks KID-app, samples vs training frames", "?").split(" (")[0]
        return name, "image", "-", "-", size, steps, f"KID-app {kid}"
    trained = config.prior.label
    sampled = model.sampling_prior
    samples = sampled.label if model.sampling else "its training prior"
    if "init" not in model.recipe:
        trained += ", from scratch"
    label = "own prior" if sampled == config.prior else f"sampled {prior_name(sampled)}"
    held = quality.get(f"scene-held ({label})")
    motion = quality.get("motion-ratio (1 = real motion)")
    measured = f"scene-held {held}" if held else f"motion-ratio {motion}" if motion else "not measured yet"
    return name, "video", trained, samples, size, steps, measured


def _print_long(models: list[pretrained.PretrainedModel]) -> None:
    for model in models:
        config, recipe = model.train_config, model.recipe
        what = "image model" if config.phase == "image" else f"video model, {config.prior} noise"
        print(
            f"{pretrained.PREFIX}{model.name}: {what}, {config.model} at {config.resolution}px, "
            f"sha256 {model.sha256[:16]}"
        )
        if recipe.get("init"):
            print(f"  finetuned from {recipe['init']}")
        if model.sampling:
            print(
                f"  samples with {model.sampling_prior} by default (generate, the explorer; "
                f"--training-prior for {config.prior}), chosen by {model.sampling.get('chosen_by', '?')}"
            )
        if model.superseded_by:
            print(f"  superseded by {pretrained.PREFIX}{model.superseded_by} (kept: results name it)")
        print(f"  recipe: {recipe.get('command', '?')}")
        if recipe.get("chosen_by"):
            print(f"  recipe chosen by: {recipe['chosen_by']}")
        print(
            f"  {recipe.get('steps', '?')} steps, batch {config.batch_size}, seed {config.seed}, "
            f"{recipe.get('wall_seconds', '?')} s on {recipe.get('machine', '?')} "
            f"(commit {recipe.get('commit', '?')})"
        )
        for number, part in enumerate(recipe.get("history", []), 1):
            print(
                f"  part {number}: steps {part['from_step']}-{part['to_step']}, {part['wall_seconds']} s, "
                f"{part.get('precision', '?')}, commit {part['commit']}, {part['machine']}, {part['started']}"
            )
        for key, value in model.quality.items():
            print(f"  {key}: {value}")


def run_verify(args: argparse.Namespace) -> int:
    """Check every shipped file, each bad one reported (not only the first), then fail if any was bad."""
    models = pretrained.registry().values()
    bad = []
    for model in models:
        try:
            pretrained.verify(model)
        except (ValueError, FileNotFoundError) as error:
            print(f"bad: {pretrained.PREFIX}{model.name}: {error}")
            bad.append(f"{pretrained.PREFIX}{model.name} ({error})")
        else:
            print(f"ok: {pretrained.PREFIX}{model.name} ({model.path.name}, sha256 {model.sha256[:16]})")
    if bad:
        raise ValueError(f"{len(bad)} of {len(models)} shipped models failed verification: " + "; ".join(bad))
    return 0


def _wall_seconds(run: Path, step: int) -> float:
    """Training time of a run up to ``step`` (a mid-run checkpoint of the zoo: not the whole run's), summed
    over its log (resumed parts included)."""
    with open(run / "log.csv") as handle:
        rows = csv.DictReader(handle)
        return round(sum(float(row["elapsed_s"]) for row in rows if int(row["step"]) <= step), 1)


def run_export(args: argparse.Namespace) -> int:
    pretrained.check_name(args.name)  # a prefix, a path or an empty name is refused before anything else
    existing = pretrained.WEIGHTS_DIR / f"{args.name}.safetensors"
    if not args.overwrite and (args.name in pretrained.registry() or existing.exists()):
        raise ValueError(
            f"pretrained:{args.name} already ships ({existing}); choose another name, or pass --overwrite to "
            "replace it"
        )
    if args.supersedes is not None:
        args.supersedes = pretrained.get(args.supersedes).name  # an unknown OLD is refused before any write
        if args.supersedes == args.name:
            raise ValueError(
                f"--supersedes {args.supersedes} names the model being exported; give the old one"
            )
    run = Path(args.run)
    checkpoint, run_dir = checkpoints.resolve_checkpoint(run)
    checkpoints.verify_checkpoint(checkpoint, full=True)
    meta = checkpoints.read_run_meta(run_dir)
    config = checkpoints.load_config(run_dir)
    step = checkpoints.checkpoint_step(checkpoint)
    if args.default and config.phase != "image":
        raise ValueError(
            "--default marks what --init auto finetunes from, a shipped image model; drop it for a video "
            "model"
        )
    quality = None
    if args.record:  # read strictly (names the file and the field), then it must have measured these weights
        run_records.read_record(args.record)
        quality = experiments.measured_quality(args.record, step, checkpoints.ema_sha256(checkpoint))
    recipe = {
        "command": args.command,
        "steps": step,
        "seed": config.seed,
        "data": f"{config.dataset} train split, {config.resolution}px frames",
        "wall_seconds": _wall_seconds(run_dir, step),
        "commit": provenance.git_commit(),
    }
    if args.why:
        recipe["chosen_by"] = args.why
    if meta.get(
        "init"
    ):  # what a finetune started from (the zoo's models: a shipped image model and its hash)
        recipe["init"] = meta["init"]
    if step < config.steps:
        if config.decay_steps:
            raise ValueError(
                f"{checkpoint} is step {step} of a {config.steps}-step run with a learning-rate decay: its "
                "weights are no shorter run's; export the run's last checkpoint"
            )
        # Constant rate after warm-up: step L of a longer run is the weights of an L-step run (the
        # finetune-length curve's checkpoints are the alpha zoo's finetunes), so the model says L steps.
        recipe["note"] = f"step {step} of a {config.steps}-step run: the weights of a {step}-step run"
        config = replace(config, steps=step)
    history = checkpoints.read_history(run_dir)
    if history:  # every part of the run: command, steps from/to, wall time, commit, machine
        recipe["history"] = history
        recipe["commit"] = history[-1]["commit"]
    weights = load_file(str(checkpoint / checkpoints.EMA_FILE))
    model = pretrained.export(
        weights,
        args.name,
        config,
        num_classes=int(meta.get("num_classes", 0)),
        recipe=recipe,
        quality=quality,
        default=args.default,
    )
    print(f"shipped {pretrained.PREFIX}{model.name}: {model.path} (sha256 {model.sha256})")
    if model.default:
        print(f"{pretrained.PREFIX}{model.name} is the default for --init auto at {config.resolution} px")
    if args.supersedes:
        pretrained.supersede(args.supersedes, model.name)
        print(f"{pretrained.PREFIX}{args.supersedes} is superseded by {pretrained.PREFIX}{model.name}")
    return 0
