"""An evaluation's results as a plain-text table: what ``pyoco-lab evaluate`` prints."""

from __future__ import annotations

import re


def format_table(results: dict) -> str:
    """The evaluation as a plain-text table (metrics × {generated, real train-half-B floor, held-out scenes})
    plus skip messages. Measures with a 95% interval print it beside the value."""
    other_lengths = sorted(n for n in results["generated"] if re.fullmatch(r"FVD-\d+f", n))
    rows = (
        "KID-app",
        "C2ST-frame",
        "C2ST-clip",
        "scene-held",
        "cut-rate",
        "FD-motion-lab",
        "precision-app",
        "recall-app",
        "density-app",
        "coverage-app",
        "NN-ratio",
        "copy-fraction",
        "FVD-lab",
        "IS-lab",
        "FD-frame-lab",
        "FVD",
        *other_lengths,
        "IS",
        "FID-frame",
        "frame-cosine",
        "motion-energy",
        "diversity",
    )
    columns = [c for c in ("generated", "real-train", "real-test") if c in results]
    titles = {"generated": "generated", "real-train": "real (train)", "real-test": "held-out scenes"}
    width = 28
    lines = [
        f"{'metric':<15}" + "".join(f"{titles[c]:>{width}}" for c in columns),
        "-" * (15 + width * len(columns)),
    ]
    for name in rows:
        if name not in results["generated"]:
            continue
        cells = [_cell(results[c], name) for c in columns]
        lines.append(f"{name:<15}" + "".join(f"{cell:>{width}}" for cell in cells))
    lines += [f"  {message}" for message in results.get("skipped", {}).values()]
    protocol = results.get("settings", {}).get("protocol")
    literature = {"FVD", "IS", "FID-frame", *other_lengths} & set(results["generated"])
    if protocol and literature and not protocol.get("follows", True):
        lines.append(f"  not the {protocol['name']} protocol: " + "; ".join(protocol["deviations"]))
    return "\n".join(lines)


def _cell(row: dict, name: str) -> str:
    if name not in row:
        return "–"
    interval = row.get(f"{name}-ci")
    return f"{row[name]:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]" if interval else f"{row[name]:.4g}"
