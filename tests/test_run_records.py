"""Committed run records (issue #24): a long study commits each evaluation as it lands, a new machine
(an empty cache) skips what the records hold, and a shorter run is the longer run's prefix."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pyoco_lab import devices
from pyoco_lab.analysis import experiments, presets, run_records, study_plans, study_runs
from pyoco_lab.cli import main
from pyoco_lab.report import summary
from pyoco_lab.training import compute, ema_sha256, pretrained


def study_settings(records, **changes):
    """The smoke preset shrunk to three runs: the curve's i.i.d. run (4 steps, evaluated at 2 and 4), the
    sweep's i.i.d. run (2 steps: the curve run's prefix) and from scratch (2 steps)."""
    s = presets.settings(
        "smoke",
        alphas=[0],
        seeds=[0],
        strategy_alphas=[0, 0],
        curve_priors=[["iid", 0]],
        sample_alphas=[0],  # Fig. 6's run is the sweep's (its own runs join the plan otherwise)
        curve_steps=[2, 4],
        curve_video_steps=4,
        video_steps=2,
        curve_samples=4,
        eval_samples=4,
        sampler={"kind": "euler", "steps": 2},
        train_extra={
            **presets.SETTINGS["smoke"].train_extra,
            "checkpoint_every": 2,
            "keep_checkpoints": 4,
        },
        keep_records=True,
    )
    return replace(s, records_dir=str(records), **changes)


def test_a_study_commits_each_evaluation_and_a_new_machine_trains_nothing_again(
    tmp_path, monkeypatch, capsys
):
    records = tmp_path / "figures" / "runs"
    s = study_settings(records)
    plan = study_plans.evaluation_plan(s)
    assert [(spec.label, spec.config.steps, evaluations) for spec, evaluations in plan] == [
        ("video-tiny-ft-iid-0-s0", 4, [(2, 4), (4, 4)]),  # the curve first
        ("video-tiny-ft-iid-0-s0", 2, [(2, 4)]),
        ("video-tiny-scratch-iid-0-s0", 2, [(2, 4)]),
    ]
    curve_run, sweep_run, _ = (spec for spec, _ in plan)
    assert curve_run.key() != sweep_run.key() and curve_run.trajectory_key() == sweep_run.trajectory_key()

    report = study_plans.run_study(s, tmp_path / "cache", progress=False)
    # The sweep's 2-step run is the curve run's first 2 steps: its evaluation was already recorded.
    assert [run["label"] for run in report["done"]] == [
        "video-tiny-ft-iid-0-s0",
        "video-tiny-scratch-iid-0-s0",
    ]
    assert report["skipped"] == ["video-tiny-ft-iid-0-s0"] and report["left"] == []
    files = sorted(p.name for p in records.glob("*.json"))
    assert files == sorted(f"{spec.label}-{spec.trajectory_key()}.json" for spec in (curve_run, plan[2][0]))
    record = json.loads(
        run_records.record_path(records, curve_run.label, curve_run.trajectory_key()).read_text()
    )
    assert record["config"]["steps"] == 4 and record["init"] == study_runs.image_run(s).folder("").name
    assert [part["to_step"] for part in record["history"]] == [4] and record["train_wall_seconds"] > 0
    assert sorted(entry["step"] for entry in record["evaluations"].values()) == [2, 4]
    local = experiments.evaluate(curve_run.folder(tmp_path / "cache") / "checkpoints" / "step-0000004", s)
    recorded = experiments.recorded_evaluation(curve_run, s, step=4)
    assert recorded == json.loads(json.dumps(local))  # the committed result is the run's own evaluation

    # A new machine: an empty cache. Everything the notebooks ask for comes from the records, untrained.
    def no_training(*args, **kwargs):
        raise AssertionError("trained although the records hold the result")

    monkeypatch.setattr(study_runs, "train", no_training)
    again = study_plans.run_study(s, tmp_path / "new-machine", progress=False)
    assert again["done"] == [] and len(again["skipped"]) == 3
    rows = experiments.train_and_evaluate({"iid": [sweep_run]}, s, tmp_path / "new-machine", progress=False)
    # what a zoo model's registry entry says of it: the record's evaluation of exactly its weights
    record = run_records.record_path(records, sweep_run.label, sweep_run.trajectory_key())
    weights = curve_run.folder(tmp_path / "cache") / "checkpoints" / "step-0000002"
    quality = experiments.measured_quality(record, 2, ema_sha256(weights))
    ratio = rows["iid"][0]["motion-ratio"]
    assert quality["motion-ratio (1 = real motion)"].startswith(f"{ratio:.3g} [")
    assert set(experiments.VERDICT_METRICS) <= set(quality)
    assert "step 2, N = 4 clips, euler 2 steps" in quality["measured_by"]
    assert quality["measured_by"].startswith(f"{record.resolve()} (training seed 0")  # outside the repo
    with pytest.raises(ValueError, match="no evaluation of these weights .* at step 3: give the record"):
        experiments.measured_quality(record, 3, ema_sha256(weights))
    later = ema_sha256(weights.parent / "step-0000004")
    other_weights = r"at step 2 \(it measured other weights there: sha256 [0-9a-f]{12}\)"
    with pytest.raises(ValueError, match=other_weights):
        experiments.measured_quality(record, 2, later)
    # `pretrained export --record`: the zoo's registry entry carries that evaluation; another run's record
    # (which never sampled these weights) is refused before anything is written
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "weights")
    export = ["pretrained", "export", str(weights), "zoo-test", "--command", "x", "--record", str(record)]
    assert main(export) == 0 and pretrained.get("zoo-test").quality == quality
    scratch = run_records.record_path(records, plan[2][0].label, plan[2][0].trajectory_key())
    assert main([*export[:3], "zoo-other", "--command", "x", "--record", str(scratch)]) == 2
    assert "no evaluation of these weights" in capsys.readouterr().err
    assert "zoo-other" not in pretrained.registry()
    at_step_2 = experiments.recorded_evaluation(curve_run, s, step=2)
    assert rows["iid"][0]["KID-app"] == at_step_2["generated"]["KID-app"] != recorded["generated"]["KID-app"]
    curve = study_plans.finetune_curve(s, tmp_path / "new-machine", progress=False)
    assert sorted(curve[("iid", 0.0)]) == [2, 4]
    # Another evaluation (more clips) is not in the records: it would need the run.
    assert experiments.recorded_evaluation(sweep_run, s, num_samples=8) is None
    with pytest.raises(AssertionError, match="trained although"):
        experiments.run_evaluation(sweep_run, s, tmp_path / "new-machine", num_samples=8)


def test_a_part_stops_before_a_run_that_would_not_fit_its_hours(tmp_path):
    s = study_settings(tmp_path / "runs")
    report = study_plans.run_study(s, tmp_path / "cache", hours=1e-6, progress=False)
    # The first run always starts; after it the pace is known and nothing else fits a 3.6 ms budget.
    assert [run["label"] for run in report["done"]] == ["video-tiny-ft-iid-0-s0"]
    assert report["left"] == ["video-tiny-scratch-iid-0-s0"] and report["skipped"] == [
        "video-tiny-ft-iid-0-s0"
    ]


def test_a_machine_that_would_emulate_bf16_leaves_the_bf16_runs_for_another(tmp_path, monkeypatch, capsys):
    s = study_settings(tmp_path / "runs")
    s = replace(s, train_extra={**s.train_extra, "precision": "bf16"})
    monkeypatch.setattr(devices, "cpu_native_bf16", lambda: None)  # AVX2 only: bf16 would be emulated
    report = study_plans.run_study(s, tmp_path / "cache", progress=False)
    note = study_plans.EMULATED_BF16_NOTE
    assert report["done"] == [] and report["skipped"] == []
    assert report["left"] == [f"{spec.label}: {note}" for spec, _ in study_plans.evaluation_plan(s)]
    assert not list((tmp_path / "runs").glob("*.json")) and not (tmp_path / "cache").exists()
    assert capsys.readouterr().err.count(note) == 1  # said once, not per run
    # the same study in fp32 runs here (a confirmation's confirm_extra), and so would bf16 with native bf16
    fp32 = replace(s, train_extra={**s.train_extra, "precision": "fp32"})
    assert study_plans.run_study(fp32, tmp_path / "cache", hours=1e-6, progress=False)["done"]


def test_reproduce_runs_refuses_a_preset_without_records_and_hours_without_runs(capsys):
    assert main(["reproduce", "--preset", "quick", "--runs"]) == 2
    assert "--runs needs a preset that commits its run records (cpu-32)" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "cpu-32", "--hours", "2"]) == 2
    assert "--hours applies to --runs" in capsys.readouterr().err


def test_from_scratch_at_equal_compute_adds_the_image_models_flops_and_extends_the_scratch_run():
    s = presets.settings("cpu-32")
    image = pretrained.get(s.image_model)
    video = study_runs.video_run(s, "iid", 0.0, finetune=False).config
    # a video step (4 clips of 8 frames + 1 image each) costs more than 4 x 9 image frames: temporal layers
    per_frame_ratio = compute.step_flops(video) / (36 * compute.step_flops(image.train_config) / 64)
    assert 1.0 < per_frame_ratio < 2.0
    extra = compute.equal_compute_steps(video, image.train_config, int(image.recipe["steps"]))
    assert extra * compute.step_flops(video) >= int(image.recipe["steps"]) * compute.step_flops(
        image.train_config
    )
    assert (extra - 1) * compute.step_flops(video) < int(image.recipe["steps"]) * compute.step_flops(
        image.train_config
    )
    runs = study_plans.equal_compute_scratch_runs(s)
    ordinary = study_plans.strategy_runs(s)["scratch"]
    assert [r.config.steps for r in runs] == [video.steps + extra] * len(s.seeds)
    # its step-video_steps checkpoint is the ordinary from-scratch run: kept, and the same trajectory
    assert [r.trajectory_key() for r in runs] == [r.trajectory_key() for r in ordinary]
    assert all(r.config.keep_checkpoints * r.config.checkpoint_every > r.config.steps for r in runs)
    plan = study_plans.evaluation_plan(s)
    long_first = next(i for i, (spec, _) in enumerate(plan) if spec.key() == runs[0].key())
    short_first = next(i for i, (spec, _) in enumerate(plan) if spec.key() == ordinary[0].key())
    assert long_first < short_first and plan[long_first][1] == [
        (video.steps, 128),
        (video.steps + extra, 128),
    ]
    # after the curve, seed by seed: the first seed's runs (the shipped zoo's) land first
    curve_keys = {spec.key() for runs in study_plans.curve_runs(s).values() for spec in runs}
    after_curve = [spec.config.seed for spec, _ in plan if spec.key() not in curve_keys]
    assert after_curve == sorted(after_curve, key=s.seeds.index) and after_curve[0] == s.seeds[0]
    assert after_curve.count(s.seeds[0]) > 1
    # within the first seed, Fig. 6's sample runs the curve does not hold come before anything else
    samples = {spec.key() for spec in study_plans.sample_runs(s).values()} - curve_keys
    first = [spec.key() for spec, _ in plan if spec.key() not in curve_keys][: len(samples)]
    assert samples and set(first) == samples
    assert study_plans.equal_compute_scratch_runs(presets.settings("quick")) == []


@pytest.mark.slow
def test_a_longer_curve_continues_the_shorter_run_in_the_cache_instead_of_starting_over(tmp_path):
    cache = tmp_path / "cache"
    short = study_settings(tmp_path / "runs")
    study_plans.run_study(short, cache, progress=False)
    shorter_run = study_plans.curve_runs(short)[("iid", 0.0)][0]
    before = sorted(p.name for p in (shorter_run.folder(cache) / "checkpoints").iterdir())
    longer = replace(short, curve_video_steps=6, curve_steps=(2, 4, 6))
    longer_run = study_plans.curve_runs(longer)[("iid", 0.0)][0]
    assert longer_run.trajectory_key() == shorter_run.trajectory_key() != longer_run.key()
    report = study_plans.run_study(longer, cache, progress=False)
    assert [run["label"] for run in report["done"]] == [longer_run.label]
    history = json.loads(
        run_records.record_path(longer.records_dir, longer_run.label, longer_run.trajectory_key()).read_text()
    )["history"]
    assert [(part["from_step"], part["to_step"]) for part in history] == [(0, 4), (4, 6)]  # resumed at 4
    # the shorter run's folder is left as it was
    assert sorted(p.name for p in (shorter_run.folder(cache) / "checkpoints").iterdir()) == before
    # Continued with records that hold none of its points (a sweep run's record, another folder): the
    # earlier checkpoints came along, so the curve's step 2 is evaluated, not refused as "not kept".
    other = replace(
        longer, records_dir=str(tmp_path / "other-records"), curve_video_steps=8, curve_steps=(2, 8)
    )
    other_run = study_plans.curve_runs(other)[("iid", 0.0)][0]
    study_plans.run_study(other, cache, progress=False)
    kept = sorted(p.name for p in (other_run.folder(cache) / "checkpoints").iterdir() if p.is_dir())
    assert kept[0] == "step-0000002"
    record = json.loads(
        run_records.record_path(other.records_dir, other_run.label, other_run.trajectory_key()).read_text()
    )
    assert sorted(entry["step"] for entry in record["evaluations"].values()) == [2, 8]
    assert [(part["from_step"], part["to_step"]) for part in record["history"]] == [(0, 4), (4, 6), (6, 8)]


def test_a_records_only_rendering_trains_nothing_and_names_the_runs_it_leaves_out(
    tmp_path, monkeypatch, capsys
):
    """`reproduce --from-records`: the alpha sweep of a study whose budget ended first renders from the
    committed records it has (the real cpu-32 ones), pairs conditions on the seeds both hold, chooses on the
    seeds every condition holds, and names the runs it left out; nothing is trained."""
    committed = Path(__file__).resolve().parents[1] / "figures" / "cpu-32" / "runs"
    s = replace(presets.settings("cpu-32"), records_dir=str(tmp_path), records_only=True)
    plan = study_plans.alpha_sweep_runs(s)
    groups = {(kind, alpha): runs for kind, per in plan.items() for alpha, runs in per.items()}
    dropped = plan["mixed"][5.0][1]  # as if seed 1 of mixed alpha = 5 had not been run
    for runs in groups.values():
        for spec in runs:
            if spec.config.seed in (0, 1) and spec is not dropped:
                name = run_records.record_path(tmp_path, spec.label, spec.trajectory_key()).name
                shutil.copy(committed / name, tmp_path / name)

    def no_training(*args, **kwargs):
        raise AssertionError("a records-only rendering trained")

    monkeypatch.setattr(study_runs, "train", no_training)
    monkeypatch.setattr(experiments, "evaluate", no_training)
    scores = experiments.train_and_evaluate(groups, s, tmp_path / "cache", allow_missing=True)
    assert "read records" in capsys.readouterr().err  # its progress bar does not say it trains
    missing = experiments.unrecorded_runs(groups, s)
    assert dropped.label in missing and all(
        spec.label in missing for runs in groups.values() for spec in runs if spec.config.seed == 2
    )
    assert [row["seed"] for row in scores[("mixed", 5.0)]] == [0]
    assert [row["seed"] for row in scores[("mixed", 1.0)]] == [0, 1]
    # the choice is made on seed 0 alone, the one seed every condition holds
    assert study_plans.choice_seeds(scores, s) == [0]
    by_hand = {
        kind: min(s.alphas, key=lambda a, k=kind: scores[(k, a)][0][experiments.SELECTION_METRIC])
        for kind in s.kinds
    }
    assert study_plans.best_alphas(scores, s) == by_hand
    # another notebook (no allow_missing) stops at the first run without a record, naming it and the fix
    with pytest.raises(
        experiments.RunNotRecorded, match=f"{dropped.label} .*reproduce --preset cpu-32 --runs"
    ):
        experiments.train_and_evaluate({"x": [dropped]}, s, tmp_path / "cache", progress=False)
    # the confirmation: a condition without any recorded run is absent, and its claims say "not run"
    best = study_plans.best_alphas(scores, s)
    confirm = study_plans.confirmation_runs(s, best)
    confirm_scores = experiments.train_and_evaluate(confirm, s, tmp_path, allow_missing=True, progress=False)
    record = study_plans.confirmation_record(confirm_scores, best, s, chosen_on=[0])
    assert record["conditions"] == {} and record["chosen_on_seeds"] == [0]
    record["not_run"] = experiments.unrecorded_runs(confirm, s)
    sweep = {
        "curves": {"mixed": {"1": experiments.summarise(scores[("mixed", 1.0)], "KID-app")}},
        "metric": "KID-app",
        "seeds": [0, 1, 2],
        "confirmation": record,
    }
    text = summary.render_section("04_alpha_sweep", sweep)
    assert "Not run (confirmation runs without a record" in text and "`video-tiny-ft-iid-0-s3`" in text
    assert "the paper's α (2) beats i.i.d. (α = 0): **not run** (no recorded run of" in text
    assert "— confirmatory" not in text
    # alpha = inf is one run for both priors: a progressive claim does not name a "mixed" run
    assert "α=∞ (one run for both priors)" in text and "mixed α=inf" not in text
    # without records_only, nothing is "unrecorded": the notebooks train what is missing
    assert experiments.unrecorded_runs(groups, replace(s, records_only=False)) == []


def test_reproduce_from_records_refuses_a_preset_without_records_and_a_study_part(capsys):
    assert main(["reproduce", "--preset", "quick", "--from-records"]) == 2
    assert "--from-records needs a preset that commits its run records (cpu-32)" in capsys.readouterr().err
    assert main(["reproduce", "--preset", "cpu-32", "--runs", "--from-records"]) == 2
    assert "does not combine with --runs" in capsys.readouterr().err
