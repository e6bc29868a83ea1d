"""``pyoco-lab reproduce``: re-execute the figure notebooks into figures/ and write figures/SUMMARY.md."""

from __future__ import annotations

import argparse
import sys

import yaml

from pyoco_lab.reproduce import (
    DEFAULT_TIME,
    PRESETS,
    RERUN_HINT,
    NotebookFailed,
    default_cache_dir,
    parse_only,
    reproduce,
    run_study_part,
    write_plan,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run the figure notebooks (papermill) and write figures/ + figures/SUMMARY.md",
        description=(
            "Execute notebooks/01..07 in order with papermill, write each one's PNG/HTML/JSON and executed "
            "notebook to FIGURES/<notebook>/ (replaced only when it succeeds, and only when it is an earlier "
            "run's output, with results.json, or with --overwrite), share trained models through the cache, "
            "and end with FIGURES/SUMMARY.md (every number next to the paper's). "
            "Resuming is the default: after an interruption or a failure, rerun the same command -- finished "
            "training runs in the cache are reused and an interrupted one continues from its newest "
            "checkpoint (there is no --resume flag to pass). "
            "Example: pyoco-lab reproduce --preset quick --only 01,02"
        ),
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="quick",
        help="smoke (CI, ~1 min each), quick (2 CPU cores, < 20 min), cpu-long (2 CPU cores, ~2.7 h: the "
        "lab's reference result for Fig. 7 / Table 5 / Fig. 8), standard (1 GPU hour), ucf (GPU-days)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated notebooks to run, by number or name (e.g. 01,inversion); default: all "
        "(an --only that names none is an error)",
    )
    parser.add_argument(
        "--figures",
        default=None,
        help="output folder (default: the repository's figures/ for quick, figures/<preset>/ otherwise)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a FIGURES/<notebook>/ folder (or a --plan DIR) that no earlier run wrote (its files "
        "are lost; a file, a training run, a checkpoint or run records inside are never replaced)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="shared artefact cache (default: runs/reproduce); its unfinished training runs are resumed",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="per-cell timeout in seconds (default: none)"
    )
    parser.add_argument(
        "--pretrain-image",
        action="store_true",
        help="pre-train the image model in the cache instead of starting from the one the lab ships "
        "(the whole chain, as before the lab shipped pretrained weights)",
    )
    parser.add_argument(
        "--plan",
        metavar="DIR",
        default=None,
        help="write the study's run graph to the folder DIR instead of running it: one torchrun line per run "
        "(image runs first), a Slurm job-array script and submit.sh (finetunes after the image runs); runs "
        "finished into the shared --cache are then reused by `pyoco-lab reproduce`, which only runs the "
        "notebooks. DIR is replaced only when it is an earlier plan (or with --overwrite)",
    )
    parser.add_argument(
        "--runs",
        action="store_true",
        help="train and evaluate the preset's runs one at a time instead of running the notebooks (curve "
        "runs first), each evaluation written to FIGURES/runs/ as it lands, to commit: a new machine "
        "loses at most the run in progress; runs those records hold are skipped. Then `reproduce` renders "
        "from them",
    )
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="render from the preset's committed run records only (FIGURES/runs/): nothing is trained; "
        "the alpha sweep (04) names the runs without a record and leaves them out (its claims that need "
        "them say 'not run'), the other notebooks stop at the first run without one",
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=None,
        help="with --runs: start no run that would not end within this many hours (estimated from the runs "
        "finished in this part), so a part of a long study ends on its own between runs",
    )
    parser.add_argument(
        "--python",
        default=None,
        metavar="PATH",
        help="with --plan: the interpreter the plan's lines run (default: this one, "
        f"{sys.executable}); $PYOCO_PYTHON overrides it when the lines run",
    )
    parser.add_argument(
        "--time",
        default=DEFAULT_TIME,
        help=f"with --plan: Slurm time limit of each task (default: {DEFAULT_TIME}); a task near it requeues "
        "itself and resumes",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="do not stream the notebooks' own output (the progress of each training run, inversion and "
        "evaluation)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter, papermill's convention: -p seeds '[0, 1, 2]' -p eval_samples 64 "
        "(VALUE is read as YAML: numbers, lists, true/false, null); it goes to the notebooks whose "
        "parameters cell declares NAME, and a name none declares is refused before anything runs",
    )
    parser.set_defaults(func=run)


def parse_parameters(pairs: list[list[str]]) -> dict:
    """{NAME: value} of ``-p NAME VALUE`` pairs, each VALUE parsed as YAML (as papermill's ``-y`` would)."""
    parameters = {}
    for name, text in pairs:
        if not name.isidentifier():
            raise ValueError(f"-p {name!r}: a parameter name must be a Python identifier (e.g. eval_samples)")
        try:
            parameters[name] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(
                f"-p {name} {text!r} is not a YAML value ({error}); quote lists: '[0, 1]'"
            ) from None
    return parameters


def run(args: argparse.Namespace) -> int:
    if args.from_records and (args.runs or args.plan):
        raise ValueError("--from-records renders the notebooks; it does not combine with --runs or --plan")
    if args.plan:
        written = write_plan(
            args.preset,
            args.plan,
            cache_dir=args.cache,
            python=args.python,
            time_limit=args.time,
            overwrite=args.overwrite,
        )
        phases = [run["phase"] for run in written["runs"]]
        lists = " then ".join(f"GPUS=1 bash {path}" for path in written["lists"].values())
        submit = next(path for path in written["files"] if path.name == "submit.sh")
        print(
            f"{len(phases)} runs of preset {args.preset} ({phases.count('image')} image, "
            f"{phases.count('video')} video) -> {lists or 'nothing to run'} (line by line), or bash {submit} "
            "(Slurm):"
        )
        for path in written["files"]:
            print(f"  {path}")
        return 0
    if args.hours is not None and not args.runs:
        raise ValueError("--hours applies to --runs; add --runs or drop --hours")
    if args.runs:
        return run_runs(args)
    only = parse_only(args.only)  # None: all; `--only ,` is refused (ValueError: exit 2, one line)
    parameters = parse_parameters(args.parameter)
    if args.pretrain_image:
        parameters["pretrain_image"] = True
    try:
        summary = reproduce(
            args.preset,
            only=only,
            figures_dir=args.figures,
            cache_dir=args.cache,
            timeout=args.timeout,
            parameters=parameters,
            stream=None if args.quiet else sys.stderr,
            overwrite=args.overwrite,
            from_records=args.from_records,
        )
    except NotebookFailed as failure:
        print(f"pyoco-lab reproduce: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        cache = args.cache or default_cache_dir()
        print(f"pyoco-lab reproduce: interrupted; {RERUN_HINT} ({cache})", file=sys.stderr)
        return 130
    print(f"summary: {summary}")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    """``reproduce --runs``: one part of a long study (``study_plans.run_study``), records as they land."""
    try:
        report = run_study_part(
            args.preset,
            figures_dir=args.figures,
            cache_dir=args.cache,
            hours=args.hours,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(f"pyoco-lab reproduce --runs: interrupted; {RERUN_HINT}", file=sys.stderr)
        return 130
    print(
        f"{len(report['done'])} run(s) trained and evaluated, {len(report['skipped'])} already recorded, "
        f"{len(report['left'])} left for the next part ({report['seconds'] / 3600:.2f} h); records: "
        f"{report['records_dir']}"
    )
    for run in report["done"]:
        print(f"  done: {run['label']} ({run['seconds'] / 60:.1f} min)")
    for label in report["left"]:
        print(f"  left: {label}")
    return 0
