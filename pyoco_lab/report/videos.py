"""SUMMARY sections 07-08, what the videos look like: sample videos at several alpha (Fig. 6) and the
finetune-length curve (flicker, scene consistency and content per checkpoint)."""

from __future__ import annotations

from collections.abc import Mapping

from pyoco_lab.analysis.verdict_rules import (
    bold,
    control_status,
    legacy_lines,
    metric_digits,
    record_cell,
    roles_lines,
    unbacked_note,
    verdict_metrics,
)
from pyoco_lab.report.common import is_interval, sampler_line
from pyoco_lab.stats import compare_records

FLICKER_FREE = (0.5, 2.0)  # motion energy within this factor band of real clips' (issue #24)


def flicker_free_length(points: Mapping[str, Mapping]) -> int | None:
    """The first finetune step whose motion-ratio interval lies wholly within :data:`FLICKER_FREE` (None when
    no measured step does): the rule that sets a study's finetune length."""
    low, high = FLICKER_FREE
    inside = [int(k) for k, rec in points.items() if float(rec["low"]) >= low and float(rec["high"]) <= high]
    return min(inside) if inside else None


def finetune_length_lines(
    motion: Mapping, prior: str, video_steps: int | None, curve_end: int | None = None
) -> list[str]:
    """The length rule's line: the first flicker-free step of ``prior``; when no measured step is and the
    curve has reached its end (``curve_end``, the preset's cap), the study finetunes to that end."""
    length = flicker_free_length(motion[prior])
    steps = sorted(int(k) for k in motion[prior])
    chosen = length
    if length is not None:
        at = {name: motion[name].get(str(length)) for name in motion if name != prior}
        others = "; ".join(f"{name} {record_cell(rec)}" for name, rec in at.items() if rec is not None)
        found = f"step {length} (motion-ratio {record_cell(motion[prior][str(length)])}); there: {others}"
    elif curve_end is not None and steps[-1] >= curve_end:
        chosen = steps[-1]
        at = {name: motion[name].get(str(chosen)) for name in motion}
        there = "; ".join(f"{name} {record_cell(rec)}" for name, rec in at.items() if rec is not None)
        found = (
            f"not reached by step {chosen}, the curve's end (its cap): the study finetunes to the cap, "
            f"where {there}"
        )
    else:
        found = f"not reached by step {steps[-1]}: the curve must go on (or stop at its cap)"
    line = (
        f"- the study's finetune length (first step where {prior} moves within 0.5–2× real motion): {found}"
    )
    if video_steps is not None:
        agrees = (
            ""
            if chosen == video_steps
            else " — **they differ: set the preset's video_steps to the rule's step**"
        )
        line += f". The preset's sweep finetunes {video_steps} steps{agrees}"
    return [line]


def finetune_length_section(r: Mapping) -> list[str]:
    curves = r["curves"]
    real = r.get("real_motion_energy")
    metrics = verdict_metrics(r, curves)
    lines = [
        f"Motion, {', '.join(metrics)} vs finetune steps (seeds {r.get('seeds')}, "
        f"{r.get('curve_samples')} clips per point, 95% intervals). "
        "motion-ratio = motion energy / real clips' "
        "(1 = real motion, ≫ 1 = flicker, 0 = frozen)"
        + (f"; real clips' motion energy {real:.4f}." if real is not None else "."),
        "",
        sampler_line(r),
        "",
        *legacy_lines(r, [r.get("metric", "FVD-lab")], "its only score of what the video shows is"),
    ]
    if r.get("yardsticks"):
        lines += roles_lines(r, metrics)
    steps = sorted({int(k) for metric in curves.values() for prior in metric.values() for k in prior})
    priors = list(curves["motion-ratio"])
    # scene-held (issue #38) where the curve's evaluations have it: cuts between scenes, beside motion
    columns = ["motion-ratio", *metrics, *(["scene-held"] if "scene-held" in curves else [])]
    lines += ["| prior | steps | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for prior in priors:
        for step in steps:
            cells = [record_cell(curves[m].get(prior, {}).get(str(step)), metric_digits(m)) for m in columns]
            lines.append(f"| {prior} | {step} | " + " | ".join(cells) + " |")
    lines.append("")
    for prior in priors:
        points = curves["motion-ratio"][prior]
        below = [int(k) for k, rec in points.items() if float(rec["high"]) <= 2]
        last = points.get(str(steps[-1]))
        frozen = last is not None and float(last["high"]) < 0.5
        if frozen:
            lines.append(
                f"- {prior}: no flicker, but frozen: motion below half of real at the last step "
                f"({record_cell(last)})"
            )
        elif below:
            lines.append(
                f"- {prior}: flicker ends (whole interval ≤ 2× real motion) from step {min(below)} on"
            )
        elif last is not None:
            lines.append(
                f"- {prior}: still flickers at every measured step (last: {record_cell(last)} × real motion "
                f"at step {steps[-1]}): more finetuning is needed than this budget holds"
            )
    length_prior = r.get("length_prior")
    if length_prior in curves["motion-ratio"]:
        lines += finetune_length_lines(
            curves["motion-ratio"], length_prior, r.get("video_steps"), r.get("curve_end")
        )
    status = control_status(r)
    if len(steps) >= 2 and r.get("yardsticks"):
        lower = r["yardsticks"].get("lower_is_better", {})
        for m in metrics:
            for prior in priors:
                first, last = curves[m][prior].get(str(steps[0])), curves[m][prior].get(str(steps[-1]))
                if first is None or last is None:
                    continue
                v, why = compare_records(last, first, lower_is_better=lower.get(m, True))
                lines.append(
                    f"- {m}: {prior} better at step {steps[-1]} than at step {steps[0]}: {bold(v)} ({why})"
                    f"{unbacked_note(status, m)}"
                )
    return lines


def samples_section(r: Mapping) -> list[str]:
    stats, real = r["stats"], r.get("real", {})
    keys = list(next(iter(stats.values())))
    if not all(is_interval(v) for values in stats.values() for v in values.values()):
        return ["(results.json predates intervals: re-run notebook 07)"]
    extra = ", ".join(f"{k} {v}" for k, v in (r.get("train_extra") or {}).items())
    recipe = f" (the shipped zoo's recipe: {extra})" if extra else ""
    lines = [
        f"Fig. 6 — samples finetuned with {r.get('prior', 'mixed')} noise at alpha = {', '.join(stats)}"
        f"{recipe}: "
        f"temporal statistics of {r.get('num_samples')} clips per alpha "
        "(one seed; 95% bootstrap intervals over "
        "the clips; diversity, a pairwise mean, has none), real clips for reference.",
        "",
        sampler_line(r),
        "",
        "| alpha | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for a, values in stats.items():
        lines.append(f"| {a} | " + " | ".join(record_cell(values[k], 4) for k in keys) + " |")
    if real:
        lines.append("| real clips | " + " | ".join(record_cell(real.get(k), 4) for k in keys) + " |")
    lines.append("")
    a_lo, a_mid, a_hi = list(stats)[0], list(stats)[len(stats) // 2], list(stats)[-1]
    if "motion-energy" in keys and len(stats) >= 2:
        v, why = compare_records(stats[a_hi]["motion-energy"], stats[a_mid]["motion-energy"])
        lines.append(
            f"- large alpha ({a_hi}) moves less than alpha {a_mid} (paper: 'difficulty generating proper "
            f"motions'): {bold(v)} ({why})"
        )
    if "scene-held" in keys:
        held = ", ".join(f"alpha {a}: {record_cell(values['scene-held'], 2)}" for a, values in stats.items())
        lines.append(
            f"- clips that keep one scene (no cut between neighbouring frames; descriptive, read beside "
            f"motion-energy: a still clip holds its scene): {held}; "
            f"real clips {record_cell(real.get('scene-held'), 2)}"
        )
    if r.get("shown_with"):  # the GIFs may sample a shipped model with its recorded prior (issue #38)
        shown = "; ".join(f"alpha {a}: {caption}" for a, caption in r["shown_with"].items())
        lines.append(
            f"- the sample videos (GIFs) were drawn so — {shown}; the statistics above sample every model "
            "with its training prior"
        )
    if "diversity" in keys and len(stats) >= 2:
        v, why = compare_records(stats[a_lo]["diversity"], stats[a_mid]["diversity"])
        lines.append(
            f"- alpha {a_lo} gives less diverse samples than alpha {a_mid} (paper: 'reduced diversity'): "
            f"{bold(v)} ({why})"
        )
    return lines
