"""SUMMARY sections 04-06, the paper's studies: the alpha sweep (Fig. 7), the training strategies
(Table 5) and model size (Fig. 8), each claim judged by the verdict rule on paired seeds
(``stats.compare_records``)."""

from __future__ import annotations

from collections.abc import Mapping

from pyoco_lab.analysis.verdict_rules import (
    bold,
    control_status,
    controls_table,
    legacy_controls_lines,
    legacy_lines,
    metric_digits,
    motion_content_line,
    record_cell,
    role,
    roles_lines,
    unbacked_note,
    verdict_metrics,
)
from pyoco_lab.report.common import (
    PAPER,
    TABLE5_ROWS,
    alpha_label,
    fmt,
    is_interval,
    means_on_common_seeds,
    not_run_lines,
    results_alpha_key,
    sampler_line,
    seeds_cell,
)
from pyoco_lab.stats import AGREES, DISAGREES, INCONCLUSIVE, all_agree, compare_records


def sweep_verdicts(r: Mapping, metric: str, curves: Mapping, scratch, lower: bool, note: str) -> list[str]:
    """Fig. 7's claims for one metric: extremes of alpha worse, the paper's alpha best, finetuning beats
    from-scratch (every line ends with ``note`` when the metric's controls do not back it)."""
    lines = []
    sign = 1 if lower else -1
    paper_alphas = r.get("paper_alphas") or PAPER["fig7"]["best_alpha"]
    grid = [str(a) for a in r.get("alphas") or []]
    for kind, curve in curves.items():
        keys = sorted(curve, key=float)
        means, common = means_on_common_seeds(curve)
        on = f" on seeds {', '.join(map(str, common))}, the ones every α holds" if common else ""
        ends_missing = [a for a in (grid[:1] + grid[-1:]) if a not in curve]
        if ends_missing:
            lines.append(
                f"- {kind}: both extremes of alpha worse than the best middle alpha: **not run** (no "
                f"recorded run at α ∈ {{{', '.join(map(alpha_label, ends_missing))}}}){note}"
            )
        elif len(keys) >= 3:
            middle = keys[1:-1]
            best_mid = min(middle, key=lambda a: sign * means[a])
            parts = [
                compare_records(curve[best_mid], curve[end], lower_is_better=lower)
                for end in (keys[0], keys[-1])
            ]
            why = "; ".join(
                f"vs α={alpha_label(end)}: {w}"
                for end, (_, w) in zip((keys[0], keys[-1]), parts, strict=True)
            )
            lines.append(
                f"- {kind}: both extremes of alpha worse than the best middle alpha "
                f"({alpha_label(best_mid)}{', by mean' + on if common else ''}): "
                f"{bold(all_agree([v for v, _ in parts]))} ({why}){note}"
            )
        paper_key = results_alpha_key(paper_alphas.get(kind))
        if paper_key in curve:
            beaten = [
                a
                for a in keys
                if a != paper_key
                and compare_records(curve[a], curve[paper_key], lower_is_better=lower)[0] == AGREES
            ]
            wins = [
                a
                for a in keys
                if a != paper_key
                and compare_records(curve[paper_key], curve[a], lower_is_better=lower)[0] == AGREES
            ]
            if beaten:
                state = DISAGREES
            elif len(wins) == len(keys) - 1:
                state = AGREES
            else:
                state = INCONCLUSIVE
            best = min(keys, key=lambda a: sign * means[a])
            lines.append(
                f"  - the paper's best alpha ({paper_key}) is the best here: {bold(state)} "
                "(conclusively beaten by "
                f"α ∈ {{{', '.join(map(alpha_label, beaten)) or 'none'}}}; conclusively beats "
                f"{len(wins)}/{len(keys) - 1} others; best mean at α={alpha_label(best)}{on}){note}"
            )
        if scratch is not None:
            outcome = [compare_records(p, scratch, lower_is_better=lower)[0] for p in curve.values()]
            lines.append(
                f"  - finetuning beats from-scratch: agrees at {outcome.count(AGREES)}, does not agree at "
                f"{outcome.count(DISAGREES)}, inconclusive at {outcome.count(INCONCLUSIVE)} of "
                f"{len(curve)} alphas "
                f"(paper: almost all){note}"
            )
    return lines


def alpha_sweep_section(r: Mapping) -> list[str]:
    if not all(is_interval(p) for curve in r["curves"].values() for p in curve.values()):
        return ["(results.json predates intervals: re-run notebook 04)"]
    combined = r.get("metric", "metric")
    by_metric = r.get("by_metric") or {
        combined: {"curves": r["curves"], "scratch": r.get("scratch"), "lower_is_better": True}
    }
    if combined in by_metric:
        by_metric[combined]["lower_is_better"] = r.get("lower_is_better", True)
    metrics = verdict_metrics(r, by_metric)
    first = next(iter(next(iter(r["curves"].values())).values()))
    lines = [
        f"Fig. 7 — {', '.join(metrics)} and motion-ratio vs alpha: mean over seeds {r.get('seeds')} with 95% "
        f"intervals ({first['method']}); {r.get('eval_samples', '?')} generated clips per evaluation, "
        f"{r.get('video_steps', '?')} finetune steps.",
        "",
        sampler_line(r),
        "",
        *not_run_lines(r.get("not_run"), "the sweep's runs without a record"),
        *legacy_lines(r, [combined]),
    ]
    if r.get("yardsticks") and r.get("controls"):
        lines += controls_table(r)
    else:
        lines += legacy_controls_lines(r, combined, r.get("lower_is_better", True))
    lines += roles_lines(r, metrics)
    temporal = r.get("temporal", {}).get("motion-ratio", {})
    kinds = list(r["curves"])
    alphas = sorted({k for curve in r["curves"].values() for k in curve}, key=float)
    lines.append("| prior | alpha | " + " | ".join(metrics) + " | motion-ratio |")
    lines.append("|---|---|" + "---|" * (len(metrics) + 1))
    for kind in kinds:
        for a in alphas:
            seeds = r.get("seeds")
            cells = [
                seeds_cell(by_metric[m]["curves"].get(kind, {}).get(a), seeds, metric_digits(m))
                for m in metrics
            ]
            cells.append(seeds_cell(temporal.get(kind, {}).get(a), seeds))
            lines.append(f"| {kind} | {alpha_label(a)} | " + " | ".join(cells) + " |")
    if r.get("scratch") is not None:
        cells = [record_cell(by_metric[m].get("scratch"), metric_digits(m)) for m in metrics]
        cells.append(record_cell(r.get("scratch_temporal", {}).get("motion-ratio")))
        lines.append("| from scratch | – | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Verdicts (rule: paired seed differences whose 95% interval excludes 0, else non-overlapping "
        "intervals; otherwise inconclusive)" + (", content first:" if r.get("yardsticks") else ":"),
    ]
    status = control_status(r)
    for m in metrics:
        entry = by_metric[m]
        lines += ["", f"{m} ({role(r, m)}):", ""]
        lines += sweep_verdicts(
            r,
            m,
            entry["curves"],
            entry.get("scratch"),
            entry.get("lower_is_better", True),
            unbacked_note(status, m),
        )
    paper_alphas = r.get("paper_alphas") or PAPER["fig7"]["best_alpha"]
    motion_lines = []
    for kind in kinds:
        motion = temporal.get(kind, {}).get(results_alpha_key(paper_alphas.get(kind)))
        if motion is not None:
            within = (
                AGREES
                if float(motion["high"]) <= 2
                else DISAGREES
                if float(motion["low"]) > 2
                else INCONCLUSIVE
            )
            motion_lines.append(
                f"- {kind}: motion at the paper's alpha within 2× real motion energy: {bold(within)} "
                f"(motion-ratio {record_cell(motion)})"
            )
    if motion_lines:
        lines += ["", "Motion energy:", "", *motion_lines]
    if r.get("confirmation"):
        lines += confirmation_lines(r, metrics, status)
    if r.get("scratch") is not None and r.get("yardsticks"):
        own = {m: by_metric[m]["scratch"] for m in metrics if by_metric[m].get("scratch") is not None}
        others: dict[str, dict] = {}
        for kind in kinds:
            for a in alphas:
                if not all(a in by_metric[m]["curves"].get(kind, {}) for m in metrics):
                    continue
                point = {m: by_metric[m]["curves"][kind][a] for m in metrics}
                if point not in others.values():  # alpha 0 and inf: one shared run for both priors
                    others[f"{kind} α={alpha_label(a)}"] = point
        lines += ["", "Content vs motion:", ""]
        lines += motion_content_line("from scratch vs every finetuned condition", own, others, r)
    return lines


def confirmation_lines(r: Mapping, metrics: list[str], status: Mapping) -> list[str]:
    """The sweep's claims re-tested on fresh seeds (issue #24): the confirmatory verdicts."""
    c = r["confirmation"]
    y = r.get("yardsticks") or {}
    lower = {**{m: True for m in metrics}, **y.get("lower_is_better", {})}
    chosen = ", ".join(f"{kind} α = {a}" for kind, a in c["best_alpha"].items())
    lines = [
        "",
        f"Confirmation on fresh seeds {c['seeds']}: the best α ({chosen}; lowest mean "
        f"{c['selection_metric']}) was chosen on seeds {c['chosen_on_seeds']}, so the verdicts above are "
        "**exploratory**; these, on seeds that took no part in choosing, are **confirmatory** "
        "(paired over seeds):",
        "",
        *not_run_lines(c.get("not_run"), "confirmation runs without a record"),
    ]
    for kind, claim, better, worse in c["claims"]:
        absent = [name for name in (better, worse) if name not in c["conditions"]]
        if absent:
            lines.append(f"- {kind}: {claim}: **not run** (no recorded run of {' or '.join(absent)})")
            continue
        for m in metrics:
            a, b = c["conditions"][better].get(m), c["conditions"][worse].get(m)
            if not (is_interval(a) and is_interval(b)):
                continue
            outcome, why = compare_records(a, b, lower_is_better=lower.get(m, True))
            lines.append(
                f"- {m}: {kind}: {claim}: {bold(outcome)} ({why}) — confirmatory{unbacked_note(status, m)}"
            )
    return lines


def strategies_section(r: Mapping) -> list[str]:
    rows, names = r["rows"], r["metrics"]
    if not all(
        is_interval(v) for key, row in rows.items() if key != "image" for v in row.values() if v is not None
    ):
        return ["(results.json predates intervals: re-run notebook 05)"]
    lines = [
        "Table 5 — training strategies (paper: UCF-101; reproduced: lab metrics on this preset's data), "
        f"mean over seeds {r.get('seeds')} with 95% intervals.",
        "",
        sampler_line(r),
        "",
        *legacy_lines(r, [m for m in ("FVD-lab", "FD-frame-lab") if m in names]),
    ]
    lines.append(
        "| strategy | " + " | ".join(f"{r['paper_column'][m]} paper | {m} ours" for m in names) + " |"
    )
    lines.append("|---|" + "---|---|" * len(names))
    for key, label in TABLE5_ROWS.items():
        if key not in rows and key not in PAPER["table5"]:
            continue
        ours = rows.get(key, {})
        paper = PAPER["table5"].get(key, {})  # the lab's own rows have no paper value
        cells = []
        for m in names:
            value = ours.get(m)
            text = record_cell(value) if is_interval(value) else fmt(value, 2)
            cells.append(f"{fmt(paper.get(r['paper_column'][m]), 2)} | {text}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    y = r.get("yardsticks") or {}
    lower = {**r["lower_is_better"], **y.get("lower_is_better", {})}
    video_rows = [k for k in TABLE5_ROWS if k in rows and k != "image"]
    metrics = verdict_metrics(r, {m for k in video_rows for m in rows[k]})
    if y:
        temporal = r.get("temporal", {})
        lines += roles_lines(r, metrics)
        lines += [
            "| strategy | " + " | ".join(metrics) + " | motion-ratio |",
            "|---|" + "---|" * (len(metrics) + 1),
        ]
        # Table 5's image row: the image model's frames on the content score (it has no clips to move)
        image_rows = ["image"] if is_interval((rows.get("image") or {}).get(y.get("content"))) else []
        for key in [*image_rows, *video_rows]:
            cells = [record_cell(rows[key].get(m), metric_digits(m)) for m in metrics]
            cells.append(record_cell(temporal.get(key, {}).get("motion-ratio")))
            lines.append(f"| {TABLE5_ROWS[key]} | " + " | ".join(cells) + " |")
        lines.append("")
    status = control_status(r)
    lines.append("Verdicts, content first:" if y else "Verdicts:")
    lines.append("")
    for m in [*metrics, *(m for m in names if m not in metrics)]:
        value = {k: rows[k][m] for k in rows if is_interval(rows[k].get(m))}
        if not {"scratch", "finetune", "mixed", "progressive"} <= set(value):
            continue
        note = unbacked_note(status, m)
        ft, why_ft = compare_records(value["finetune"], value["scratch"], lower_is_better=lower[m])
        parts = [
            compare_records(value[k], value["finetune"], lower_is_better=lower[m])
            for k in ("mixed", "progressive")
        ]
        lines.append(f"- {m}: finetuning beats from scratch {bold(ft)} ({why_ft}){note}")
        if "scratch-equal-compute" in value:  # the image model's FLOPs spent on training from scratch instead
            eq, why_eq = compare_records(
                value["finetune"], value["scratch-equal-compute"], lower_is_better=lower[m]
            )
            lines.append(
                f"- {m}: finetuning beats from scratch at equal total compute {bold(eq)} ({why_eq}){note}"
            )
        lines.append(
            f"- {m}: correlated noise (mixed and progressive) beats i.i.d. finetuning "
            f"{bold(all_agree([v for v, _ in parts]))} "
            f"(mixed: {parts[0][1]}; progressive: {parts[1][1]}){note}"
        )
    if "scratch" in rows:
        others = {k: rows[k] for k in ("finetune", "mixed", "progressive") if k in rows}
        lines += motion_content_line("from scratch vs the three finetunes", rows["scratch"], others, r)
    return lines


def model_size_section(r: Mapping) -> list[str]:
    sizes = r["sizes"]
    if not all(is_interval(v) for values in r["results"].values() for v in values):
        return ["(results.json predates intervals: re-run notebook 06)"]
    combined = r.get("metric", "metric")
    by_metric = {combined: r["results"], **(r.get("by_metric") or {})}
    y = r.get("yardsticks") or {}
    lower = {combined: r.get("lower_is_better", True), **y.get("lower_is_better", {})}
    metrics = verdict_metrics(r, by_metric)
    names = list(r["results"])
    motion = (r.get("temporal") or {}).get("motion-ratio", {})
    lines = [
        f"Fig. 8 — {', '.join(metrics)} vs model size (paper: {', '.join(PAPER['fig8']['sizes'])}; "
        f"here: {', '.join(f'{n} ({p / 1e6:.2f}M)' for n, p in zip(sizes, r['parameters'], strict=True))}), "
        f"mean over seeds {r.get('seeds')} with 95% intervals.",
        "",
        sampler_line(r),
        "",
        *legacy_lines(r, [combined]),
    ]
    if y:
        lines += roles_lines(r, metrics)
    columns = [*metrics, *(["motion-ratio"] if motion else [])]
    lines += ["| model | condition | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for i, size in enumerate(sizes):
        for name in names:
            cells = [
                record_cell(by_metric[m][name][i], metric_digits(m)) for m in metrics if name in by_metric[m]
            ]
            if motion:
                cells.append(record_cell(motion[name][i]))
            lines.append(f"| {size} | {name} | " + " | ".join(cells) + " |")
    lines += ["", "Verdicts, content first:" if y else "Verdicts:", ""]
    status = control_status(r)
    for m in metrics:
        table, note = by_metric[m], unbacked_note(status, m)
        scratch = table.get("scratch")
        for kind in ("mixed", "progressive"):
            if scratch and kind in table:
                outcome = [
                    compare_records(a, b, lower_is_better=lower.get(m, True))[0]
                    for a, b in zip(table[kind], scratch, strict=True)
                ]
                lines.append(
                    f"- {m}: {kind} finetuning beats from scratch at every size (paper: all): "
                    f"{bold(all_agree(outcome))} "
                    f"(agrees at {outcome.count(AGREES)}, inconclusive at "
                    f"{outcome.count(INCONCLUSIVE)}, does not "
                    f"agree at {outcome.count(DISAGREES)} of {len(sizes)}){note}"
                )
        for kind, values in table.items():
            if len(values) > 1:
                steps = [
                    compare_records(b, a, lower_is_better=lower.get(m, True))[0]
                    for a, b in zip(values, values[1:], strict=False)
                ]
                lines.append(
                    f"- {m}: {kind}: each larger model better than the next smaller "
                    f"{bold(all_agree(steps))}{note}"
                )
    if "scratch" in names:
        for i, size in enumerate(sizes):
            own = {m: by_metric[m]["scratch"][i] for m in metrics}
            others = {k: {m: by_metric[m][k][i] for m in metrics} for k in names if k != "scratch"}
            lines += motion_content_line(f"from scratch ({size}) vs its finetunes", own, others, r)
    return lines
