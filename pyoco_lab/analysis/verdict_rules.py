"""Which measures may carry a verdict, and the lines that say so (issue #22).

Each section's results.json carries the metric controls table ("controls": {control: {measure: record}})
and "yardsticks" (experiments.yardstick_record: which measure is content / motion / combined, which way is
better, which controls each must rank below real). A measure is used for verdicts only when every one of
its controls ranks clearly worse than real (``control_status``); a verdict line on any other measure says
so (``unbacked_note``). Used by every section of ``figures/SUMMARY.md`` (:mod:`pyoco_lab.report`)
and by the notebooks' figure titles (``control_notes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyoco_lab.stats import AGREES, all_agree, compare_records, format_record


def bold(text: str) -> str:
    return f"**{text}**"


def record_cell(record: Mapping | None, digits: int = 2) -> str:
    """A record (mean and interval) as a table cell; "–" when there is none."""
    return "–" if record is None else format_record(record, digits)


PASSES, FAILS, UNTESTED = "passes", "fails", "untested"
NOT_USED = "not used for verdicts"


def control_status(r: Mapping) -> dict[str, dict]:
    """{measure: {"state": passes | fails | untested, "failures": [(control, why)], "missing": [control]}}.

    The rule: a control passes when ``compare_records`` *agrees* that real is better than it (its interval
    lies entirely on the worse side of real's; paired over seeds when both hold several). A target control
    absent from the table (older results) leaves the measure untested. Empty without ``r["yardsticks"]``.
    """
    y = r.get("yardsticks")
    if not y:
        return {}
    controls = r.get("controls") or {}
    real = controls.get("real", {})
    out = {}
    for measure, targets in y.get("control_targets", {}).items():
        lower = y.get("lower_is_better", {}).get(measure, True)
        failures, missing = [], []
        for kind in targets:
            if measure not in real or measure not in controls.get(kind, {}):
                missing.append(kind)
                continue
            verdict, why = compare_records(real[measure], controls[kind][measure], lower_is_better=lower)
            if verdict != AGREES:
                failures.append((kind, why))
        state = FAILS if failures else UNTESTED if missing else PASSES
        out[measure] = {"state": state, "failures": failures, "missing": missing}
    return out


def control_notes(r: Mapping, metrics: Sequence[str] = ()) -> dict[str, str]:
    """{measure: its controls' outcome in a few words} (figure titles), from ``control_status``; each of
    ``metrics`` the clip controls never saw is marked as backing no verdict, as its verdict lines are."""
    words = {
        PASSES: "passes its controls",
        FAILS: f"fails controls: {NOT_USED}",
        UNTESTED: "controls not tested",
    }
    notes = {m: words[s["state"]] for m, s in control_status(r).items()}
    notes.update({m: f"no clip controls: {NOT_USED}" for m in metrics if m not in notes})
    return notes


def usable(status: Mapping, metric: str) -> bool:
    return status.get(metric, {}).get("state") == PASSES


def unbacked_note(status: Mapping, metric: str) -> str:
    """What a verdict line based on ``metric`` must say when its controls do not back it ('' when they do)."""
    s = status.get(metric)
    if s is None:
        return f" — {metric} is not validated by the clip controls: {NOT_USED}"
    if s["state"] == FAILS:
        return f" — {metric} fails controls ({', '.join(k for k, _ in s['failures'])}): {NOT_USED}"
    if s["state"] == UNTESTED:
        return f" — {metric} not tested against {', '.join(s['missing'])}: {NOT_USED}"
    return ""


def role(r: Mapping, metric: str) -> str:
    y = r.get("yardsticks") or {}
    if metric == y.get("content"):
        return "content score, the primary verdict metric for 'does the video look like anything'"
    if metric == y.get("motion"):
        return "motion score: the lab classifier's motion stream alone"
    if metric == y.get("combined"):
        return "the paper's FVD stand-in: content and motion in one number, carried by its motion stream"
    return "lower is better" if metric != "IS-lab" else "higher is better"


def verdict_metrics(r: Mapping, available) -> list[str]:
    """The metrics a section gives verdicts on, content first: content, motion, combined (``yardsticks``);
    older results: their one ``metric``. Only those in ``available``."""
    y = r.get("yardsticks")
    wanted = [y["content"], y["motion"], y["combined"]] if y else [r.get("metric", "FVD-lab")]
    return [m for m in wanted if m in available]


def roles_lines(r: Mapping, metrics) -> list[str]:
    status = control_status(r)
    lines = ["Verdict metrics (lower is better for each):"]
    for m in metrics:
        state = "" if usable(status, m) else f" — **{unbacked_note(status, m)[3:]}**"
        lines.append(f"- {m}: {role(r, m)}{state}")
    return [*lines, ""]


LEGACY_WHY = {
    "FD-frame-lab": (
        "FD-frame-lab fails the frame controls: Gaussian noise, shuffled pixels and flat colour score closer "
        "to the training frames than held-out real frames do"
    ),
    "FVD-lab": (
        "FVD-lab is carried by the lab classifier's motion stream and was never tested against content-free "
        "motion (the motion-on-noise control), so smooth motion with no content can win on it"
    ),
}


def legacy_lines(r: Mapping, used, what: str = "its verdicts rest on") -> list[str]:
    """For results.json written before the content/motion yardsticks: say what its verdicts rest on."""
    if r.get("yardsticks"):
        return []
    return [
        f"**This results.json predates the content and motion yardsticks (issue #22): {what} "
        f"{' / '.join(used)}, which {'does' if len(used) == 1 else 'do'} not pass the new controls.** "
        + "; ".join(LEGACY_WHY[m] for m in used if m in LEGACY_WHY)
        + ". Re-run the notebook for content (KID-app) and motion (FD-motion-lab) verdicts.",
        "",
    ]


def metric_digits(metric: str) -> int:
    return 4 if metric == "KID-app" else 3  # kernel distances are small numbers


def controls_table(r: Mapping) -> list[str]:
    """All controls x the clip measures, and per measure whether it passes *its* controls."""
    controls = r["controls"]
    status = control_status(r)
    targets = r["yardsticks"].get("control_targets", {})
    names = list(controls["real"])
    lines = [
        f"Metric controls: real training clips (not the reference's) and five corruptions of them, N = "
        f"{r.get('eval_samples')} clips each, measured against the same reference as every run (95% "
        "intervals). A measure is used for verdicts only if every control it must see ranks clearly worse "
        "than real (its interval entirely on the worse side of real's): content measures must see blurred "
        "and motion-on-noise clips, the motion score frozen, shuffled and flickering ones, the combined ones "
        "all five. motion-ratio is descriptive (1 = real motion).",
        "",
        "| clips | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for kind, row in controls.items():
        lines.append(
            f"| {kind} | " + " | ".join(record_cell(row.get(m), metric_digits(m)) for m in names) + " |"
        )
    cells = []
    for m in names:
        s = status.get(m)
        if s is None:
            cells.append("descriptive" if m == "motion-ratio" else "no controls")
        elif s["state"] == PASSES:
            cells.append("passes")
        elif s["state"] == FAILS:
            cells.append(f"**fails** ({', '.join(k for k, _ in s['failures'])})")
        else:
            cells.append(f"not tested ({', '.join(s['missing'])})")
    lines += ["| **its controls** | " + " | ".join(cells) + " |", ""]
    for m in names:
        s = status.get(m)
        if s is None:
            continue
        if s["state"] == PASSES:
            lines.append(f"- {m}: ranks real clips above {', '.join(targets[m])}: **passes its controls**")
        elif s["state"] == FAILS:
            why = "; ".join(f"real vs {k}: {w}" for k, w in s["failures"])
            lines.append(f"- {m}: **fails controls: {NOT_USED}** ({why})")
        else:
            lines.append(f"- {m}: not tested against {', '.join(s['missing'])}: **{NOT_USED}**")
    return [*lines, ""]


def legacy_controls_lines(r: Mapping, metric: str, lower: bool) -> list[str]:
    """The controls of results.json written before the yardsticks: frozen / shuffled / flicker only."""
    controls = r.get("controls")
    if not controls:
        return []
    names = [m for m in (metric, "FD-frame-lab", "motion-ratio", "frame-cosine") if m in controls["real"]]
    lines = [
        "Metric controls (held-out real clips made frozen / shuffled / flickering; "
        f"N = {r.get('eval_samples')} clips each, the same reference and N as every generated row; "
        "95% intervals):",
        "",
        "| clips | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for kind, row in controls.items():
        lines.append(f"| {kind} | " + " | ".join(record_cell(row.get(m), 3) for m in names) + " |")
    lines.append("")
    verdicts = []
    for kind in controls:
        if kind == "real":
            continue
        v, why = compare_records(controls["real"][metric], controls[kind][metric], lower_is_better=lower)
        verdicts.append(v)
        lines.append(f"- {metric} ranks real clips above {kind} clips: {bold(v)} ({why})")
    lines.append(
        f"- {metric} separates real motion from frozen, shuffled and flickering video: "
        f"{bold(all_agree(verdicts))}; it was not tested against content-free motion or blurred clips"
    )
    return [*lines, ""]


def motion_content_line(subject: str, own: Mapping, others: Mapping[str, Mapping], r: Mapping) -> list[str]:
    """Does ``subject`` win on motion while failing on content (or the reverse) against ``others``?

    ``own``: {metric: record}; ``others``: {label: {metric: record}}. Counts conclusive comparisons only
    (``compare_records``). Empty without the content and motion scores.
    """
    y = r.get("yardsticks") or {}
    content, motion = y.get("content"), y.get("motion")
    others = {k: o for k, o in others.items() if content in o and motion in o}
    if content not in own or motion not in own or not others:
        return []
    lower = y.get("lower_is_better", {})

    def count(metric: str, first_better: bool) -> int:
        pairs = [
            (own[metric], o[metric]) if first_better else (o[metric], own[metric]) for o in others.values()
        ]
        return sum(
            compare_records(a, b, lower_is_better=lower.get(metric, True))[0] == AGREES for a, b in pairs
        )

    n = len(others)
    mb, mw, cb, cw = count(motion, True), count(motion, False), count(content, True), count(content, False)
    status = control_status(r)
    notes = unbacked_note(status, content) + unbacked_note(status, motion)
    if mb and cw:
        return [
            f"- {subject}: motion score ({motion}) better than {mb}/{n} of them but content score "
            f"({content}) worse than {cw}/{n} — **wins on motion, fails on content**{notes}"
        ]
    if cb and mw:
        return [
            f"- {subject}: content score ({content}) better than {cb}/{n} of them but motion score "
            f"({motion}) worse than {mw}/{n} — **wins on content, fails on motion**{notes}"
        ]
    return [
        f"- {subject}: motion score ({motion}) better than {mb}/{n}, worse than {mw}/{n}; content score "
        f"({content}) better than {cb}/{n}, worse than {cw}/{n} (conclusive comparisons only): it does not "
        f"win on one while failing the other{notes}"
    ]
