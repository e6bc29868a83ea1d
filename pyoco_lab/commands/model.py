"""``pyoco-lab model summary``: parameter counts of every named U-Net config next to the paper's."""

from __future__ import annotations

import argparse

from pyoco_lab.models import CONFIGS, count_parameters, get_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model",
        help="inspect the video U-Net configurations (Tables G-M)",
        description="Example: pyoco-lab model summary",
    )
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION")
    summary = sub.add_parser("summary", help="parameter count of each config (meta device) vs the paper")
    summary.add_argument("--config", action="append", help="only these config names (repeatable)")
    summary.set_defaults(func=run_summary)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def summary_rows(names=None) -> list[dict]:
    rows = []
    for name in names or CONFIGS:
        cfg = get_config(name)
        video = count_parameters(cfg)
        rows.append(
            {
                "name": name,
                "table": cfg.paper_table or "-",
                "architecture": cfg.architecture,
                "resolution": cfg.resolution,
                "video_params": video,
                "temporal_params": video - count_parameters(get_config(name, video=False)),
                "paper_params": cfg.paper_params,
            }
        )
    return rows


def run_summary(args) -> int:
    rows = summary_rows(args.config)
    header = f"{'config':<12} {'table':>5} {'arch':>9} {'res':>5} {'params':>10} {'temporal':>9}"
    print(f"{header} {'paper':>9} {'diff':>7}")
    for r in rows:
        paper = f"{r['paper_params'] / 1e6:8.0f}M" if r["paper_params"] else "        -"
        diff = (
            f"{100 * (r['video_params'] / r['paper_params'] - 1):+6.1f}%" if r["paper_params"] else "      -"
        )
        print(
            f"{r['name']:<12} {r['table']:>5} {r['architecture']:>9} {r['resolution']:>5} "
            f"{r['video_params'] / 1e6:9.2f}M {r['temporal_params'] / 1e6:8.2f}M {paper} {diff}"
        )
    return 0
