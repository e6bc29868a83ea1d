"""``pyoco-lab sampling-sweep``: sample video models under other noise priors; judge scene, motion, content"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib.pyplot as plt

from pyoco_lab import provenance, viz
from pyoco_lab.analysis.plots import sampling_sweep_figure
from pyoco_lab.analysis.sampling_priors import (
    BEST_RULE,
    REAL_ROW,
    STORE_FILE,
    best_sampling_prior,
    format_table,
    parse_prior,
    prior_name,
    quality_record,
    sampling_choice,
    sampling_sweep,
    summary_rows,
)
from pyoco_lab.commands._sampling import (
    add_reinit_arguments,
    add_sampler_arguments,
    reinit_options,
    sampler_options,
)
from pyoco_lab.fileio import atomic_write_text
from pyoco_lab.training import pretrained, resolve_checkpoint


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sampling-sweep",
        help="sample video models with other noise priors than they were trained with; judge each set",
        description=(
            "Sample --num clips from each MODEL under each --prior and --seeds, and judge every set with "
            "scene consistency (does a clip keep one scene?), motion-ratio (1 = real motion) and content "
            "(KID-app against the training clips), beside real clips and the scene-consistency controls. "
            "Every result is stored in OUT/sweep.json as it lands (a killed sweep resumes), the table in "
            "OUT/table.md, scene-held and KID-app against motion in OUT/scene_vs_motion.png, and the "
            "first seed's clips as contact sheets in OUT/sheets/ with the detected "
            "cuts framed in red. OUT must be new, empty, or this command's own earlier output. "
            "Example: pyoco-lab sampling-sweep pretrained:zoo-32-progressive-2 --prior own "
            "--prior progressive:5 --seeds 0 1 2 --out figures/levers/sampling-prior"
        ),
    )
    parser.add_argument(
        "models", nargs="+", metavar="MODEL", help="video run folders, checkpoints or pretrained:NAME"
    )
    parser.add_argument(
        "--prior",
        action="append",
        default=None,
        help="own (the training prior), iid, or KIND:ALPHA, e.g. progressive:5 (repeat; default: own)",
    )
    parser.add_argument("--num", type=int, default=128, help="clips per evaluation (default: 128)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds (default: 0)")
    add_sampler_arguments(parser, sampler="deis", steps=6)
    add_reinit_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="clips per sampling batch (default: 32)")
    parser.add_argument("--out", required=True, help="output folder (sweep.json, table.md, sheets/)")
    parser.add_argument(
        "--record-quality",
        action="store_true",
        help="store each shipped model's rows in its registry entry (`pretrained list` shows them), "
        "replacing the scene-held rows an earlier sweep stored",
    )
    parser.add_argument(
        "--recommend",
        metavar="PRIOR",
        default=None,
        help="record PRIOR (KIND:ALPHA, iid or own) as the prior each shipped MODEL samples with by default "
        "(generate and the explorer; the training prior one flag away), with this sweep's row as the reason; "
        "PRIOR must be one of the sweep's --prior. 'best': per model, " + BEST_RULE + " (needs --prior own)",
    )
    parser.set_defaults(func=run)


def _check_out(out: Path) -> None:
    """OUT is new, empty, or holds this command's sweep.json: nothing of the user's is written over."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; pass a folder that is new, empty or this command's own")
    if out.is_dir() and any(out.iterdir()) and not (out / STORE_FILE).is_file():
        raise ValueError(
            f"--out {out} holds files that sampling-sweep did not write (no {STORE_FILE}); pass a new or "
            "empty folder"
        )


def run(args: argparse.Namespace) -> int:
    priors = [parse_prior(text) for text in (args.prior or ["own"])]
    if args.num < 2 or args.batch_size < 1:
        raise ValueError("--num must be at least 2 and --batch-size at least 1")
    options = sampler_options(args)
    reinit = reinit_options(args)
    if (args.record_quality or args.recommend) and not all(pretrained.is_pretrained(m) for m in args.models):
        raise ValueError(
            "--record-quality and --recommend write shipped models' registry entries; every MODEL must be "
            "pretrained:NAME"
        )
    by_rule = args.recommend == "best"
    recommended = parse_prior(args.recommend) if args.recommend and not by_rule else None
    if by_rule and None not in priors:
        raise ValueError("--recommend best compares every prior with the training prior's; add --prior own")
    if args.recommend and not by_rule and recommended not in priors:
        raise ValueError(
            f"--recommend {args.recommend} is not one of the sweep's --prior; add --prior {args.recommend}"
        )
    if args.recommend and reinit is not None:
        raise ValueError("--recommend records a noise prior; a re-initialised sweep cannot recommend one")
    for model in args.models:  # each model must load: checked before any sampling
        if pretrained.is_pretrained(model):
            if pretrained.get(model).train_config.phase != "video":
                raise ValueError(f"{model} is a shipped image model; sampling-sweep samples video models")
        else:
            resolve_checkpoint(model)
    out = Path(args.out)
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    call = {
        "command": args.command_line,
        "commit": provenance.git_commit(),
        "machine": provenance.machine_description(),
        "started": provenance.utc_now(),
    }
    document = sampling_sweep(
        args.models,
        priors,
        args.seeds,
        out / STORE_FILE,
        num_clips=args.num,
        sampler=args.sampler,
        num_steps=args.steps,
        sampler_options=options,
        reinit=reinit,
        batch_size=args.batch_size,
        sheets=out / "sheets",
        call=call,
    )
    table = format_table(document)
    header = (
        f"# Sampling sweep\n\nLast call: `{call['command']}` at {call['commit']}, started {call['started']}, "
        f'{time.time() - start:.0f} s on {call["machine"]} (every call: {STORE_FILE}\'s "calls").\n'
        f"Intervals: over seeds (t) where a row has several, else the one evaluation's (Clopper-Pearson for "
        f"scene-held, bootstrap over clips for the others).\n\n"
    )
    atomic_write_text(out / "table.md", header + table + "\n")
    fig = sampling_sweep_figure(summary_rows(document), document["controls"], real_row=REAL_ROW)
    viz.save_figure(fig, out / "scene_vs_motion.png")
    plt.close(fig)
    if args.record_quality:
        for model in args.models:
            record = quality_record(document, model, provenance.repo_relative(out / STORE_FILE))
            pretrained.record_quality(pretrained.get(model).name, record, drop=("scene-held",))
    if args.recommend:
        for model in args.models:
            shipped = pretrained.get(model)
            chosen = best_sampling_prior(document, model) if by_rule else recommended
            prior = chosen or shipped.train_config.prior
            reason = sampling_choice(document, model, prior, provenance.repo_relative(out / STORE_FILE))
            if by_rule:
                reason += f" (chosen by --recommend best: {BEST_RULE})"
            pretrained.record_sampling(shipped.name, None if chosen is None else prior, reason)
            print(f"{model} now samples with {prior_name(prior)} by default ({reason})")
    print(table)
    print(f"-> {out / STORE_FILE}, {out / 'table.md'}, {out / 'scene_vs_motion.png'}, {out / 'sheets'}/")
    return 0
