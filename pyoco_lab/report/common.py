"""What every section of ``figures/SUMMARY.md`` shares: the paper's numbers (``PAPER``, once), the
sampler line, and the cells and words the sections print."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from pyoco_lab.analysis import presets
from pyoco_lab.analysis.results import alpha_key
from pyoco_lab.analysis.verdict_rules import (
    record_cell,
)

# Ge et al. (2023). Table 1: cosine similarity of noise maps from inverting real UCF-101 frames.
# Table 5: UCF-101 training strategies (IS up, FVD down, frame FID down). Fig. 7: best alphas.
PAPER = {
    "table1": {"same": (0.206, 0.156), "different": (0.001, 0.009)},
    "table5": {
        "image": {"IS": None, "FVD": None, "FID": 30.05},
        "scratch": {"IS": 28.25, "FVD": 903.37, "FID": 124.75},
        "finetune": {"IS": 41.25, "FVD": 566.67, "FID": 56.43},
        "mixed": {"IS": 52.71, "FVD": 337.40, "FID": 31.57},
        "progressive": {"IS": 53.52, "FVD": 339.67, "FID": 31.88},
    },
    "fig7": {
        "alphas": (0, 0.1, 0.2, 0.5, 1, 2, 5, 10, math.inf),
        "best_alpha": {"mixed": 1.0, "progressive": 2.0},
    },
    "fig8": {"sizes": ("69M", "112M", "253M")},
}

TABLE5_ROWS = {
    "image": "Image Diffusion (ID)",
    "scratch": "Training from scratch",
    "scratch-equal-compute": "From scratch, at the finetune's total compute (lab)",
    "finetune": "Finetuning from ID",
    "mixed": "+ Mixed Noise",
    "progressive": "+ Progressive Noise",
}


def verdict_word(ok: bool | None) -> str:
    if ok is None:
        return "**not tested**"
    return "**agrees**" if ok else "**does not agree**"


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}"


PAPER_SAMPLER = "stochastic DEIS 3kutta, 25 steps (A.3; churn values not given)"


def sampler_line(r: Mapping) -> str:
    """Which sampler produced a section's numbers, next to the paper's (A.3).

    From ``results.json``'s ``sampler`` (``SamplerSpec.record()``, or a plain string); without it, the
    preset's sampler (``presets.SETTINGS``), said to be the preset's and not recorded.
    """
    sampler = r.get("sampler")
    if isinstance(sampler, Mapping) and sampler.get("description"):
        ours = str(sampler["description"])
    elif isinstance(sampler, str) and sampler:
        ours = sampler
    else:
        preset = r.get("preset")
        if preset not in presets.SETTINGS:
            return f"- sampler: not recorded in results.json (paper: {PAPER_SAMPLER})"
        ours = (
            f"{presets.SETTINGS[preset].sampler.describe()} — preset `{preset}`'s, not recorded in "
            "results.json"
        )
    line = f"- sampler: {ours} (paper: {PAPER_SAMPLER})"
    if r.get("reference_split"):
        line += f"; real statistics from the `{r['reference_split']}` split"
    return line


def seeds_cell(record: Mapping | None, seeds, digits: int = 2) -> str:
    """:func:`record_cell`, naming the seeds when the record holds fewer than ``seeds`` (a run not
    recorded)."""
    held = record.get("seeds") if record is not None else None
    if held is None or seeds is None or len(held) >= len(seeds):
        return record_cell(record, digits)
    return f"{record_cell(record, digits)} (seeds {', '.join(map(str, held))})"


def not_run_lines(labels, what: str) -> list[str]:
    """The runs a records-only rendering left out, named: a claim that needs them is 'not run'."""
    if not labels:
        return []
    return [
        f"Not run ({what}; rendered from the committed records only, `reproduce --from-records`): "
        + ", ".join(f"`{label}`" for label in labels)
        + ". A condition missing a seed is summarised on the seeds it holds and compared paired on the seeds "
        "both hold; a claim whose condition has no run says so.",
        "",
    ]


def is_interval(record) -> bool:
    return isinstance(record, Mapping) and "low" in record and "high" in record


def alpha_label(key) -> str:
    return "∞" if str(key) == "inf" else str(key)


def results_alpha_key(alpha) -> str | None:
    return None if alpha is None else alpha_key(alpha)


def means_on_common_seeds(curve: Mapping[str, Mapping]) -> tuple[dict[str, float], list[int] | None]:
    """Each point's mean over the seeds every point of ``curve`` holds, and those seeds (None: the records
    do not name their seeds, or all hold the same ones; then each point's own mean). A point missing a seed
    (a run not made) is ranked on the others' seeds too: a mean over different seeds would favour the point
    that lacks a hard seed (as ``study_plans.choice_seeds`` for the choice itself)."""
    own = {a: float(p["mean"]) for a, p in curve.items()}
    held = [p.get("seeds") for p in curve.values()]
    if not held or any(h is None for h in held):
        return own, None
    common = [seed for seed in held[0] if all(seed in h for h in held)]
    if not common or all(len(h) == len(common) for h in held):
        return own, None
    means = {
        a: statistics.fmean(v for v, seed in zip(p["values"], p["seeds"], strict=True) if seed in common)
        for a, p in curve.items()
    }
    return means, common
