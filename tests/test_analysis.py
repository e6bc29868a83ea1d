"""Unit tests of pyoco_lab.analysis: Table 1 statistics, t-SNE scores, the run plan, the summary verdicts."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch

from pyoco_lab import noise
from pyoco_lab.analysis import (
    experiments,
    inversion,
    plots,
    presets,
    priors,
    results,
    study_plans,
    study_runs,
    tsne,
    verdict_rules,
)
from pyoco_lab.metrics.controls import CONTROLS
from pyoco_lab.metrics.yardsticks import CLIP_CONTROL_TARGETS
from pyoco_lab.report import common as report_common
from pyoco_lab.report import premise, studies, summary, videos


def test_cosine_table_of_prior_noise_matches_closed_form():
    # Mixed noise with alpha=1 has frame correlation 1/2; for D-dimensional maps the cosine of two
    # frames concentrates around it with std ~ 1/sqrt(D); independent clips give 0 +- 1/sqrt(D).
    g = torch.Generator().manual_seed(0)
    maps = noise.sample_noise("mixed", (12, 5, 3, 16, 16), 1.0, generator=g)
    table = inversion.cosine_similarity_table(maps)
    d = 3 * 16 * 16
    assert table["same_video"]["count"] == 12 * 5 * 4 // 2
    assert table["different_video"]["count"] == (60 * 59 // 2) - 120
    assert abs(table["same_video"]["mean"] - 0.5) < 4 * 0.06  # std of one video's shared part dominates
    assert (
        abs(table["different_video"]["mean"]) < 4 / math.sqrt(d * table["different_video"]["count"]) + 0.005
    )
    assert table["different_video"]["std"] == pytest.approx(1 / math.sqrt(d), rel=0.15)
    assert table["iid_floor_std"] == pytest.approx(1 / math.sqrt(d))


def test_same_source_pairs_are_kept_out_of_both_rows():
    g = torch.Generator().manual_seed(1)
    maps = noise.sample_noise("iid", (4, 3, 1, 8, 8), generator=g)
    maps[0] = maps[0, :1].clone()  # a frozen clip ...
    maps[1] = maps[0] + 0.01 * maps[1]  # ... and a copy of it: a second clip of the same source
    table = inversion.cosine_similarity_table(maps, torch.tensor([7, 7, 8, 9]))
    assert table["same_source"]["mean"] > 0.99
    assert table["different_video"]["mean"] < 0.2
    with pytest.raises(ValueError, match="one source"):
        inversion.cosine_similarity_table(maps, torch.tensor([1, 1, 1, 1]))


def test_distance_curve_and_fitted_alpha_recover_a_progressive_prior():
    g = torch.Generator().manual_seed(2)
    maps = noise.sample_noise("progressive", (64, 6, 3, 16, 16), 2.0, generator=g)
    curve = inversion.similarity_by_distance(maps)
    r = 2 / math.sqrt(5)
    for d, mean in zip(curve["distance"], curve["mean"], strict=True):
        assert mean == pytest.approx(r**d, abs=0.03)
    fitted = inversion.fit_prior_alphas(curve)
    assert fitted["progressive"] == pytest.approx(2.0, rel=0.15)


def test_gaussianity_flags_image_like_maps():
    g = torch.Generator().manual_seed(3)
    white = torch.randn((4, 3, 3, 16, 16), generator=g)
    assert inversion.gaussianity(white)["looks_gaussian"]
    smooth = torch.nn.functional.avg_pool2d(white.flatten(0, 1), 3, 1, 1).unflatten(0, (4, 3)) * 3
    verdict = inversion.gaussianity(smooth)
    assert not verdict["looks_gaussian"] and "undertrained" in verdict["message"]
    assert "unlike what it was trained on" in verdict["message"]  # or the footage is simply unusual


def test_tsne_scores_separate_clustered_from_random_points():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 2)) * 20
    clustered = np.concatenate([c + rng.normal(size=(5, 2)) for c in centres])
    video = np.repeat(np.arange(4), 5)
    hit, chance = tsne.neighbour_same_video(clustered, video)
    assert hit == 1.0 and chance == pytest.approx(4 / 19)
    hit_random, _ = tsne.neighbour_same_video(rng.normal(size=(20, 2)), video)
    assert hit_random < 0.7
    points, prior, vids, frames = tsne.prior_samples(
        "progressive", 10.0, num_videos=3, num_frames=4, shape=(1, 4, 4)
    )
    assert points.shape == (24, 1, 4, 4) and prior.tolist() == [0] * 12 + [1] * 12
    embedding = tsne.embed(points, perplexity=3.0)
    assert embedding.shape == (24, 2)


def test_prior_study_agrees_with_closed_form_within_sampling_error():
    study = priors.prior_study((0.0, 1.0, math.inf), num_frames=4, num_samples=32, resolution=8)
    assert study["worst_error_in_standard_errors"] < 6
    assert priors.limit_table(4)["mixed, alpha=inf"] == [1.0, 1.0]


def test_settings_overrides_and_unknown_knobs():
    s = presets.settings("quick", alphas=[0, 2, math.inf], eval_samples=None)
    assert s.alphas == (0.0, 2.0, math.inf) and s.eval_samples == presets.SETTINGS["quick"].eval_samples
    with pytest.raises(ValueError, match="unknown setting"):
        presets.settings("quick", alpah=1)
    with pytest.raises(ValueError, match="unknown preset"):
        presets.settings("huge")


def test_a_config_field_added_later_leaves_run_keys_alone_at_its_neutral_value():
    """Runs cached (or committed) before --decay-steps existed keep their keys; a decay makes a new run."""
    spec = study_runs.video_run(presets.settings("quick"), "iid", 0)
    assert "decay_steps" not in study_runs._config_dict(spec.config)  # what the key hashes
    decayed = dataclasses.replace(spec, config=dataclasses.replace(spec.config, decay_steps=10))
    assert decayed.key() != spec.key()


def test_run_plan_shares_identical_runs():
    s = presets.settings("quick")
    # alpha = 0 is i.i.d. for both priors and alpha = inf is identical frames for both: one run each
    assert study_runs.video_run(s, "mixed", 0).key() == study_runs.video_run(s, "progressive", 0).key()
    assert (
        study_runs.video_run(s, "mixed", math.inf).key()
        == study_runs.video_run(s, "progressive", math.inf).key()
    )
    assert study_runs.video_run(s, "mixed", 1).key() != study_runs.video_run(s, "progressive", 1).key()
    scratch, finetune = study_runs.video_run(s, "iid", 0, finetune=False), study_runs.video_run(s, "iid", 0)
    assert scratch.init is None and finetune.init is not None and scratch.key() != finetune.key()
    # Table 5 and Fig. 6 reuse the alpha sweep's runs
    sweep = {
        r.key() for per in study_plans.alpha_sweep_runs(s).values() for runs in per.values() for r in runs
    }
    assert {r.key() for runs in study_plans.strategy_runs(s).values() for r in runs} <= sweep
    # the finetune-length curve evaluates checkpoints of the sweep's own runs
    assert {r.key() for runs in study_plans.curve_runs(s).values() for r in runs} <= sweep
    # Fig. 6's runs are the sweep's runs (alphas of the grid); an alpha off the grid gets its own run
    fig6 = study_plans.sample_runs(s)
    assert {r.key() for r in fig6.values()} <= sweep
    off_grid = study_plans.sample_runs(presets.settings("quick", sample_alphas=[0, 10]))
    assert off_grid[10.0].key() not in sweep and off_grid[0.0].key() in sweep
    # the quick preset's whole plan: the 7 sweep runs, nothing else; the tiny image model is the shipped
    # one (finetunes start from it, nothing pre-trains it)
    assert finetune.init == "pretrained:lab-tiny-16-256k"
    assert sum(r.config.phase == "image" for r in study_plans.all_runs(s)) == 0
    assert len(study_plans.all_runs(s)) == 7
    # the documented switch re-trains the whole chain: the image model is in the plan again
    whole = presets.settings("quick", pretrain_image=True)
    assert sum(r.config.phase == "image" for r in study_plans.all_runs(whole)) == 1
    assert len(study_plans.all_runs(whole)) == 8
    assert study_runs.video_run(whole, "iid", 0).key() != finetune.key()
    # cpu-long: 11 Fig. 7 conditions x 3 seeds + 2 more sizes x 3 strategies x 3 seeds + their image models
    long = presets.settings("cpu-long")
    assert len(study_plans.all_runs(long)) == 33 + 18 + 2
    keys = [r.key() for r in study_plans.all_runs(s)]
    assert len(keys) == len(set(keys))
    assert list(study_plans.model_size_runs(s)) == list(s.size_models)


def test_table1_verdict():
    same = {"mean": 0.2, "std": 0.15, "count": 500}
    assert premise.table1_gap(same, {"mean": 0.0, "std": 0.01, "count": 5000})[0]
    assert not premise.table1_gap(same, {"mean": 0.19, "std": 0.01, "count": 5000})[0]


def test_summary_reports_agreement_and_is_atomic(tmp_path):
    payload = {
        "same_video": {"mean": 0.25, "std": 0.1, "count": 400},
        "different_video": {"mean": 0.001, "std": 0.02, "count": 4000},
        "gaussianity": {
            "mean": 0.0,
            "variance": 1.0,
            "autocorrelation": 0.01,
            "looks_gaussian": True,
            "message": "",
        },
        "fitted_alpha": {"mixed": 0.6, "progressive": 1.1},
    }
    results.save_results(tmp_path / "02_inversion", "02_inversion", "quick", payload)

    def rec(values):
        return experiments.summarise([{"m": v} for v in values], "m")

    sweep = {
        "metric": "FVD-lab",
        "lower_is_better": True,
        "seeds": [0, 1, 2],
        "curves": {"mixed": {"0": rec([9, 9.5, 8.5]), "1": rec([5, 5.5, 4.5]), "inf": rec([12, 12.5, 11])}},
        "scratch": rec([20, 21, 19]),
        "best_alpha": {"mixed": "1"},
        "paper_alphas": {"mixed": 1.0},
    }
    results.save_results(tmp_path / "04_alpha_sweep", "04_alpha_sweep", "quick", sweep)
    path = summary.write_summary(tmp_path, preset="quick")
    text = path.read_text()
    assert "0.206 ± 0.156" in text and "0.250 ± 0.100" in text
    assert "Table 1's gap (same ≫ different): **agrees**" in text
    assert "both extremes of alpha worse than the best middle alpha (1): **agrees**" in text
    assert "the paper's best alpha (1) is the best here: **agrees**" in text
    assert "finetuning beats from-scratch: agrees at 3" in text
    assert not list(tmp_path.glob(".*tmp"))
    # non-Gaussian maps make the Table 1 verdict inconclusive instead of "agrees"
    payload["gaussianity"] = {**payload["gaussianity"], "looks_gaussian": False, "message": "undertrained"}
    results.save_results(tmp_path / "02_inversion", "02_inversion", "quick", payload)
    assert "**inconclusive**" in summary.write_summary(tmp_path, preset="quick").read_text()


def test_summary_run_time_keeps_every_part(tmp_path):
    """A study run in parts: notebooks run earlier keep the wall time papermill recorded for them."""
    results.save_results(tmp_path / "01_noise_priors", "01_noise_priors", "quick", {"max_error": 0.0})
    results.save_results(tmp_path / "08_finetune_length", "08_finetune_length", "quick", {})
    papermill = {"papermill": {"duration": 1866.1, "end_time": "2026-12-01T13:34:23.5+00:00"}}
    executed = tmp_path / "08_finetune_length" / "08_finetune_length.ipynb"
    executed.write_text(json.dumps({"cells": [], "metadata": papermill, "nbformat": 4, "nbformat_minor": 5}))
    text = summary.write_summary(tmp_path, preset="quick", timings={"01_noise_priors": 12.4}).read_text()
    assert "| 08_finetune_length | 1866 | 2026-12-01 13:34 |" in text
    stamped = re.search(r"\| 01_noise_priors \| 12 \| (\d{4}-\d\d-\d\d \d\d:\d\d) \|", text)
    assert stamped, "this run's notebook is stamped with when it finished"
    ran_at = datetime.strptime(stamped[1], "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - ran_at).total_seconds()) < 120
    assert "| total | 1878 | |" in text


def test_results_json_is_strict_json(tmp_path):
    path = results.save_results(
        tmp_path, "01_x", "smoke", {"a": math.inf, "b": math.nan, "t": torch.tensor([1.5])}
    )
    data = json.loads(path.read_text())
    assert data == {"notebook": "01_x", "preset": "smoke", "a": "inf", "b": None, "t": [1.5]}
    with pytest.raises(FileNotFoundError, match="reproduce"):
        summary.write_summary(tmp_path / "empty", preset="quick")


def _rec(values):
    return experiments.summarise([{"m": v} for v in values], "m")


def _yardsticks(fvd_on_noise: list[float]) -> dict:
    """A controls table where every measure passes its controls except, if ``fvd_on_noise`` is as good as
    real, FVD-lab on the motion-on-noise control."""
    real = {
        "KID-app": _rec([0.0, 0.001, 0.0]),
        "FD-motion-lab": _rec([1, 1.1, 0.9]),
        "FVD-lab": _rec([2, 2, 2.1]),
    }
    worse = {
        "KID-app": _rec([0.5, 0.6, 0.55]),
        "FD-motion-lab": _rec([30, 31, 32]),
        "FVD-lab": _rec([40, 41, 42]),
    }
    controls = {"real": real, **{kind: dict(worse) for kind in CONTROLS if kind != "real"}}
    controls["motion on noise"] = {**worse, "FVD-lab": _rec(fvd_on_noise)}
    return {
        "controls": controls,
        "yardsticks": {
            "content": "KID-app",
            "motion": "FD-motion-lab",
            "combined": "FVD-lab",
            "lower_is_better": {"KID-app": True, "FD-motion-lab": True, "FVD-lab": True},
            "control_targets": {m: list(CLIP_CONTROL_TARGETS[m]) for m in real},
        },
    }


def _sweep_with_scratch_smooth_but_empty(fvd_on_noise) -> dict:
    """Fig. 7 results where from scratch has the best motion score and the worst content score."""
    content = {"0": _rec([0.2, 0.21, 0.22]), "1": _rec([0.1, 0.11, 0.12]), "inf": _rec([0.3, 0.31, 0.32])}
    motion = {"0": _rec([50, 52, 51]), "1": _rec([20, 21, 22]), "inf": _rec([60, 61, 62])}
    fvd = {"0": _rec([90, 92, 91]), "1": _rec([40, 41, 42]), "inf": _rec([95, 96, 97])}
    return {
        "metric": "FVD-lab",
        "lower_is_better": True,
        "seeds": [0, 1, 2],
        "eval_samples": 64,
        "curves": {"mixed": fvd},
        "scratch": _rec([10, 11, 12]),
        "temporal": {"motion-ratio": {"mixed": {"1": _rec([1.1, 1.2, 1.3])}}},
        "scratch_temporal": {"motion-ratio": _rec([0.9, 1.0, 1.1])},
        "best_alpha": {"mixed": "1"},
        "paper_alphas": {"mixed": 1.0},
        "by_metric": {
            "KID-app": {
                "curves": {"mixed": content},
                "scratch": _rec([0.9, 0.91, 0.92]),
                "lower_is_better": True,
            },
            "FD-motion-lab": {
                "curves": {"mixed": motion},
                "scratch": _rec([2, 2.1, 2.2]),
                "lower_is_better": True,
            },
            "FVD-lab": {"curves": {"mixed": fvd}, "scratch": _rec([10, 11, 12]), "lower_is_better": True},
        },
        **_yardsticks(fvd_on_noise),
    }


def test_sweep_summary_reports_wins_on_motion_fails_on_content_and_the_controls():
    r = _sweep_with_scratch_smooth_but_empty(fvd_on_noise=[2, 2.1, 2])  # FVD-lab blind to content-free motion
    status = verdict_rules.control_status(r)
    assert status["KID-app"]["state"] == status["FD-motion-lab"]["state"] == verdict_rules.PASSES
    assert status["FVD-lab"]["state"] == verdict_rules.FAILS
    assert [k for k, _ in status["FVD-lab"]["failures"]] == ["motion on noise"]
    text = summary.render_section("04_alpha_sweep", r)
    # the controls table: all six controls, and each measure against its own controls
    for kind in CONTROLS:
        assert f"| {kind} | " in text
    assert "| **its controls** | passes | passes | **fails** (motion on noise) |" in text
    assert "- FVD-lab: **fails controls: not used for verdicts** (real vs motion on noise:" in text
    # content first, named the primary verdict metric; content verdicts stand, FVD-lab's are kept but marked
    assert text.index("KID-app (content score, the primary verdict metric") < text.index(
        "FVD-lab (the paper's"
    )
    verdicts = text.split("Verdicts (rule:")[1]
    fvd_lines = [
        line
        for line in verdicts.split("FVD-lab (the paper's")[1].split("Motion energy:")[0].splitlines()
        if "**" in line
    ]
    assert fvd_lines and all(
        line.endswith("FVD-lab fails controls (motion on noise): not used for verdicts") for line in fvd_lines
    )
    content_lines = verdicts.split("KID-app (content score")[1].split("FD-motion-lab (motion")[0]
    assert "not used for verdicts" not in content_lines
    assert "finetuning beats from-scratch: agrees at 3" in content_lines  # content: every finetune beats it
    # the computed line: better motion than every finetune, worse content than every finetune
    assert (
        "- from scratch vs every finetuned condition: motion score (FD-motion-lab) better than 3/3 of them "
        "but content score (KID-app) worse than 3/3 — **wins on motion, fails on content**" in text
    )
    # FVD-lab passing all its controls: no marks at all
    passing = summary.render_section("04_alpha_sweep", _sweep_with_scratch_smooth_but_empty([40, 41, 42]))
    assert "not used for verdicts" not in passing and "| passes | passes | passes |" in passing


def test_strategies_and_model_size_summaries_cite_content_and_motion():
    ys = _yardsticks([2, 2.1, 2])
    cells = {  # name: (KID-app, FD-motion-lab, FVD-lab): scratch moves well and shows nothing
        "scratch": ([0.9, 0.91, 0.92], [2, 2.1, 2.2], [10, 11, 12]),
        "finetune": ([0.3, 0.31, 0.32], [50, 51, 52], [90, 91, 92]),
        "mixed": ([0.1, 0.11, 0.12], [20, 21, 22], [40, 41, 42]),
        "progressive": ([0.1, 0.12, 0.11], [25, 26, 27], [45, 46, 47]),
    }
    rows = {
        k: {m: _rec(v) for m, v in zip(("KID-app", "FD-motion-lab", "FVD-lab"), c, strict=True)}
        for k, c in cells.items()
    }
    table5 = {
        "metrics": ["FVD-lab"],
        "paper_column": {"FVD-lab": "FVD"},
        "lower_is_better": {"FVD-lab": True},
        "rows": {"image": {"FVD-lab": None}, **rows},
        "temporal": {k: {"motion-ratio": _rec([1, 1.1, 1.2])} for k in rows},
        **ys,
    }
    text = summary.render_section("05_strategies", table5)
    assert "- KID-app: finetuning beats from scratch **agrees**" in text
    assert "- KID-app: correlated noise (mixed and progressive) beats i.i.d. finetuning **agrees**" in text
    assert "- FVD-lab: finetuning beats from scratch **does not agree**" in text
    fvd_lines = [line for line in text.splitlines() if line.startswith("- FVD-lab: ")]
    assert len(fvd_lines) == 3  # its role (in bold) and its two verdicts, all marked
    assert all(
        "FVD-lab fails controls (motion on noise): not used for verdicts" in line for line in fvd_lines
    )
    assert "from scratch vs the three finetunes: motion score (FD-motion-lab) better than 3/3" in text
    assert "— **wins on motion, fails on content**" in text
    # The lab's equal-compute row: its own line in both tables (no paper value) and its own verdict.
    equal = {"KID-app": _rec([0.25] * 3), "FD-motion-lab": _rec([9] * 3), "FVD-lab": _rec([30] * 3)}
    table5["rows"]["scratch-equal-compute"] = equal
    table5["temporal"]["scratch-equal-compute"] = {"motion-ratio": _rec([1, 1, 1])}
    text = summary.render_section("05_strategies", table5)
    assert (
        sum("| From scratch, at the finetune's total compute (lab) |" in line for line in text.splitlines())
        == 2
    )
    assert "- KID-app: finetuning beats from scratch at equal total compute **does not agree**" in text
    sizes = {
        "metric": "FVD-lab",
        "lower_is_better": True,
        "sizes": ["tiny"],
        "parameters": [1e6],
        "results": {k: [rows[k]["FVD-lab"]] for k in ("scratch", "mixed", "progressive")},
        "by_metric": {
            m: {k: [rows[k][m]] for k in ("scratch", "mixed", "progressive")} for m in rows["mixed"]
        },
        **ys,
    }
    text = summary.render_section("06_model_size", sizes)
    assert "- KID-app: mixed finetuning beats from scratch at every size (paper: all): **agrees**" in text
    assert "- from scratch (tiny) vs its finetunes: motion score (FD-motion-lab) better than 2/2" in text


def test_committed_cpu_long_summary_renders_and_says_what_its_verdicts_rest_on():
    """figures/cpu-long predates the content and motion yardsticks: its sections still render, each saying
    its verdicts rest on FVD-lab / FD-frame-lab, which the new controls do not back."""
    figures = Path(__file__).resolve().parents[1] / "figures" / "cpu-long"
    text = summary.render_summary(results.load_results(figures), preset="cpu-long")
    assert "results.json is incomplete" not in text and "predates intervals" not in text
    sections = {s.split("\n", 1)[0]: s for s in text.split("\n## ")[1:]}
    for title in ("04. Alpha sweep (Fig. 7)", "05. Training strategies (Table 5)", "06. Model size (Fig. 8)"):
        assert (
            "predates the content and motion yardsticks (issue #22): its verdicts rest on FVD-lab"
            in sections[title]
        )
        assert "never tested against content-free motion" in sections[title]
    assert "FD-frame-lab fails the frame controls" in sections["05. Training strategies (Table 5)"]
    assert (
        "FVD-lab is not validated by the clip controls: not used for verdicts"
        in sections["04. Alpha sweep (Fig. 7)"]
    )
    assert "predates the content and motion yardsticks" in sections["08. Finetune length and flicker"]


def test_the_sweep_choice_is_confirmed_on_fresh_seeds_and_summary_says_which_verdicts_are_confirmatory(
    monkeypatch,
):
    s = presets.settings("cpu-32")
    # Fig. 7's rule: per prior, the best mean content score over the choosing seeds -- not FVD-lab, which
    # here (as on the embedded data) ranks the frozen alpha = inf first
    assert experiments.SELECTION_METRIC == experiments.CONTENT_METRIC == "KID-app"
    kid = {("mixed", 2.0): 0.5, ("progressive", 5.0): 0.4, ("iid", 0.0): 0.9, ("mixed", math.inf): 0.8}

    def sweep_rows(kind, a):
        key = (kind, float(a)) if (kind, float(a)) in kid else ("iid" if a == 0 else "mixed", float(a))
        return [
            {"KID-app": kid.get(key, 0.7) + 0.01 * seed, "FVD-lab": 1.0 if a == math.inf else 9.0}
            for seed in range(3)
        ]

    scores = {(kind, float(a)): sweep_rows(kind, a) for kind in s.kinds for a in s.alphas}
    best = study_plans.best_alphas(scores, s)
    assert best == {"mixed": 2.0, "progressive": 5.0}
    plan = study_plans.confirmation_runs(s, best)
    # the choice, the paper's alphas and both ends, each on the fresh seeds 3-5 only
    assert set(plan) == {
        ("mixed", 2.0),
        ("progressive", 5.0),
        ("mixed", 1.0),
        ("progressive", 2.0),
        ("iid", 0.0),
        ("mixed", math.inf),
    }
    assert all([r.config.seed for r in runs] == [3, 4, 5] for runs in plan.values())
    # one arithmetic for every confirmation run (confirm_extra), whatever the sweep's runs were made in
    assert {r.config.precision for runs in plan.values() for r in runs} == {"fp32"}
    assert {spec.config.precision for spec in study_plans.alpha_sweep_runs(s)["mixed"][2.0]} == {"bf16"}
    # the runs no choice decides come first, i.i.d. and the paper's progressive alpha at their head (the
    # first claim a study short of compute completes is Table 5's), the chosen alphas last
    assert list(plan)[:3] == [("iid", 0.0), ("progressive", 2.0), ("mixed", 1.0)]
    assert list(plan)[-2:] == [("mixed", 2.0), ("progressive", 5.0)]
    # ... and the study plans those before the sweep on seeds 0-2 is recorded, the chosen ones only after
    with_records = dataclasses.replace(s, records_dir="unused")
    monkeypatch.setattr(study_plans, "recorded_best_alphas", lambda s: None)
    planned = [spec.key() for spec, _ in study_plans.evaluation_plan(with_records)]
    unchosen = study_plans.confirmation_runs(s, None)
    assert list(unchosen) == [("iid", 0.0), ("progressive", 2.0), ("mixed", 1.0), ("mixed", math.inf)]
    # Table 5's pair seed by seed (a study cut short holds seed-paired runs), then each condition's seeds
    iid, progressive, mixed, frozen = unchosen.values()
    paired = [r.key() for pair in zip(iid, progressive, strict=True) for r in pair]
    assert planned[-12:] == paired + [r.key() for runs in (mixed, frozen) for r in runs]
    assert not set(planned) & {r.key() for key in [("mixed", 2.0), ("progressive", 5.0)] for r in plan[key]}
    monkeypatch.setattr(study_plans, "recorded_best_alphas", lambda s: best)
    planned = [spec.key() for spec, _ in study_plans.evaluation_plan(with_records)]
    iid, progressive, *rest = plan.values()
    paired = [r.key() for pair in zip(iid, progressive, strict=True) for r in pair]
    assert planned[-18:] == paired + [r.key() for runs in rest for r in runs]

    def rows(kid):  # three fresh seeds
        return [{"KID-app": k, "FD-motion-lab": 3.0 + k, "FVD-lab": 10 * k, "motion-ratio": 1.0} for k in kid]

    confirm = {
        ("mixed", 2.0): rows([0.2, 0.21, 0.22]),
        ("progressive", 5.0): rows([0.5, 0.52, 0.49]),
        ("mixed", 1.0): rows([0.3, 0.3, 0.31]),
        ("progressive", 2.0): rows([0.4, 0.41, 0.42]),
        ("iid", 0.0): rows([0.45, 0.47, 0.46]),
        ("mixed", math.inf): rows([0.9, 0.95, 0.92]),
    }
    record = study_plans.confirmation_record(confirm, best, s)
    assert record["seeds"] == [3, 4, 5] and record["chosen_on_seeds"] == [0, 1, 2]
    r = {**_sweep_with_scratch_smooth_but_empty(fvd_on_noise=[40, 41, 42]), "confirmation": record}
    text = summary.render_section("04_alpha_sweep", r)
    assert "the verdicts above are **exploratory**" in text
    assert "- KID-app: mixed: the best α (2) beats α = 0 (i.i.d.): **agrees**" in text
    assert "- KID-app: progressive: the best α (5) beats α = 0 (i.i.d.): **does not agree**" in text
    assert "- KID-app: progressive: the paper's α (2) beats i.i.d. (α = 0): **agrees**" in text
    assert text.count("— confirmatory") == 3 * len(record["claims"])


def test_the_finetune_length_is_the_first_step_where_progressive_moves_like_real_video():
    motion = {
        "progressive α=2": {
            "250": _rec([4, 4.2, 4.1]),
            "500": _rec([1.9, 2.4, 2.2]),
            "1000": _rec([1.2, 1.3, 1.25]),
        },
        "iid α=0": {"250": _rec([9, 9.5, 9.2]), "500": _rec([5, 5, 5.1]), "1000": _rec([3, 3.2, 3.1])},
    }
    assert videos.flicker_free_length(motion["progressive α=2"]) == 1000  # at 500 the interval crosses 2
    assert videos.flicker_free_length({"250": _rec([0.2, 0.25, 0.22])}) is None  # frozen is not flicker-free
    r = {"curves": {"motion-ratio": motion}, "seeds": [0, 1, 2], "curve_samples": 128}
    text = summary.render_section(
        "08_finetune_length", {**r, "length_prior": "progressive α=2", "video_steps": 1000}
    )
    assert "(first step where progressive α=2 moves within 0.5–2× real motion): step 1000" in text
    assert "there: iid α=0 3.10 [" in text and "they differ" not in text
    text = summary.render_section(
        "08_finetune_length", {**r, "length_prior": "progressive α=2", "video_steps": 500}
    )
    assert "**they differ: set the preset's video_steps to the rule's step**" in text
    # never within the band: the curve must go on, unless it has reached its cap -- then the cap is the length
    r["curves"]["motion-ratio"]["progressive α=2"]["1000"] = _rec([2.5, 2.9, 2.7])
    capped = {**r, "length_prior": "progressive α=2", "video_steps": 1000}
    assert "not reached by step 1000: the curve must go on" in summary.render_section(
        "08_finetune_length", capped
    )
    text = summary.render_section("08_finetune_length", {**capped, "curve_end": 1000})
    assert "not reached by step 1000, the curve's end (its cap): the study finetunes to the cap" in text
    assert "where progressive α=2 2.70 [" in text and "iid α=0 3.10 [" in text and "they differ" not in text
    text = summary.render_section("08_finetune_length", {**capped, "curve_end": 1000, "video_steps": 500})
    assert "**they differ" in text


def test_summary_asks_whether_the_datas_own_correlation_predicts_the_best_prior():
    inversion = {
        "notebook": "02_inversion",
        "preset": "cpu-32",
        "fitted_alpha": {"mixed": 1.64, "progressive": 2.36},
    }
    sweep = {
        "notebook": "04_alpha_sweep",
        "preset": "cpu-32",
        "metric": "FVD-lab",
        "seeds": [0, 1, 2],
        "curves": {
            kind: {"0": {}, "1": {}, "2": {}, "5": {}, "inf": {}} for kind in ("mixed", "progressive")
        },
        "best_alpha": {"mixed": "2", "progressive": "2"},
    }
    lines = summary.data_prior_lines({"02_inversion": inversion, "04_alpha_sweep": sweep})
    text = "\n".join(lines)
    assert (
        "- mixed: α fitted to inverted real clips 1.64 (02; nearest on the sweep's grid: 2); best-scoring α 2"
        in text
    )
    assert text.count("**the data's correlation points at the best α**") == 2
    sweep["best_alpha"] = {"mixed": "5", "progressive": "inf"}
    assert (
        "\n".join(summary.data_prior_lines({"02_inversion": inversion, "04_alpha_sweep": sweep})).count(
            "**they differ**"
        )
        == 2
    )
    assert summary.data_prior_lines({"04_alpha_sweep": sweep}) == []  # needs both notebooks

    # with the selection metric's values per seed, the answer is only as sure as the choice: a best mean
    # that beats nothing conclusively is no evidence either way
    def point(values):
        return experiments.summarise([{"KID-app": v, "seed": s} for s, v in enumerate(values)], "KID-app")

    clear = {"0": point([3, 3.1, 3.2]), "1": point([2, 2.1, 2.2]), "2": point([1, 1.1, 1.2])}
    clear |= {"5": point([2.5, 2.6, 2.7]), "inf": point([4, 4.2, 4.1])}
    tied = {**clear, "5": point([0.9, 1.3, 1.1])}
    sweep |= {
        "selection_metric": "KID-app",
        "chosen_on_seeds": [0, 1, 2],
        "by_metric": {"KID-app": {"curves": {"mixed": clear, "progressive": tied}, "lower_is_better": True}},
        "best_alpha": {"mixed": "2", "progressive": "2"},
    }
    text = "\n".join(summary.data_prior_lines({"02_inversion": inversion, "04_alpha_sweep": sweep}))
    assert "best mean KID-app over seeds [0, 1, 2]): **the data's correlation points at the best α**" in text
    assert (
        "**inconclusive: the fitted α's grid point has the best mean but conclusively beats 3/4 other α**"
        in text
    )
    inversion["fitted_alpha"] = {"mixed": 1.1, "progressive": 4.6}
    text = "\n".join(summary.data_prior_lines({"02_inversion": inversion, "04_alpha_sweep": sweep}))
    assert "- mixed: α fitted to inverted real clips 1.10 (02; nearest on the sweep's grid: 1)" in text
    assert text.count("**they differ**") == 1  # mixed: alpha 2 beats 1 on every seed
    assert "**inconclusive: the best-scoring α does not conclusively beat α = 5 (paired difference" in text


def test_a_sweep_missing_a_seed_ranks_its_alphas_on_the_seeds_every_alpha_holds():
    def point(values, seeds):
        rows = [{"KID-app": v, "seed": s} for v, s in zip(values, seeds, strict=True)]
        return experiments.summarise(rows, "KID-app")

    # alpha 2 lacks seed 2, the hard seed: on its own seeds its mean (0.55) looks best, on seeds 0-1 it is not
    curve = {
        "0": point([0.5, 0.5, 2.0], [0, 1, 2]),
        "2": point([0.6, 0.5], [0, 1]),
        "inf": point([1, 1], [0, 1]),
    }
    means, common = report_common.means_on_common_seeds(curve)
    assert common == [0, 1] and means == {"0": 0.5, "2": 0.55, "inf": 1.0}
    r = {"alphas": ["0", "2", "inf"], "paper_alphas": {"mixed": 2}}
    lines = studies.sweep_verdicts(r, "KID-app", {"mixed": curve}, None, True, "")
    assert "best mean at α=0 on seeds 0, 1, the ones every α holds" in lines[1]
    # every point on the same seeds: each its own mean, nothing said
    assert report_common.means_on_common_seeds({"0": curve["0"], "1": point([1, 2, 3], [0, 1, 2])})[1] is None
    # a grid end without any run: that claim is not run, not made against the next alpha
    gone = studies.sweep_verdicts(
        {"alphas": ["0", "2", "5", "inf"]},
        "KID-app",
        {"mixed": {"0": curve["0"], "2": curve["2"], "5": curve["inf"]}},
        None,
        True,
        "",
    )
    assert "**not run** (no recorded run at α ∈ {∞})" in gone[0]


def test_fig7_draws_a_point_on_fewer_seeds_hollow_and_says_so():
    full = {"mean": 1.0, "low": 0.5, "high": 1.5, "n": 3, "method": "t over 3 seeds"}
    fewer = {**full, "n": 2, "method": "t over 2 seeds"}

    def legend(curve):
        fig = plots.metric_vs_alpha_figure({"mixed": curve}, metric="KID-app")
        texts = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
        plots.plt.close(fig)
        return texts

    assert "hollow: fewer than 3 seeds" in legend({"0": full, "2": fewer})
    assert not any("hollow" in text for text in legend({"0": full, "2": full}))


def test_fig7_names_the_real_clips_line_as_asked():
    """motion-ratio's real line is a target (1 = real motion), not a floor: the legend says which."""
    point = {"mean": 1.0, "low": 0.5, "high": 1.5, "n": 3, "method": "t over 3 seeds"}
    real = {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 3, "method": "t over 3 seeds"}
    fig = plots.metric_vs_alpha_figure(
        {"mixed": {"0": point}}, metric="motion-ratio", floor=real, floor_label="real clips (1 = real motion)"
    )
    texts = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    plots.plt.close(fig)
    assert "real clips (1 = real motion)" in texts and "real clips (floor)" not in texts


def test_a_panel_of_a_measure_the_clip_controls_never_saw_says_it_backs_no_verdict():
    """Table 5's IS-lab and FD-frame-lab panels: as in their verdict lines, 'not used for verdicts'."""
    r = _sweep_with_scratch_smooth_but_empty(fvd_on_noise=[2, 2.1, 2])
    notes = verdict_rules.control_notes(r, ["KID-app", "FVD-lab", "IS-lab"])
    assert notes["KID-app"] == "passes its controls"
    assert notes["FVD-lab"] == "fails controls: not used for verdicts"
    assert notes["IS-lab"] == "no clip controls: not used for verdicts"
    assert "IS-lab" not in verdict_rules.control_notes(r)
