"""Intervals, the verdict rule and the metric controls (issue: the alpha experiment with power)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_metrics import _MovingSquares

from pyoco_lab import stats
from pyoco_lab.analysis import experiments, presets
from pyoco_lab.evaluation import controls as scored
from pyoco_lab.metrics import controls as C
from pyoco_lab.metrics import lab
from pyoco_lab.metrics.temporal import temporal_statistics
from pyoco_lab.report import summary
from pyoco_lab.training import preset_config


def test_t_interval_matches_the_textbook_value():
    interval = stats.t_interval([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.3027; s = 1; half width = 4.3027 / sqrt(3)
    assert interval.mean == 2.0 and interval.n == 3
    assert interval.high - interval.mean == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    single = stats.t_interval([5.0])
    assert not single.bounded and single.mean == 5.0
    with pytest.raises(ValueError, match="at least one"):
        stats.t_interval([])
    with pytest.raises(ValueError, match="finite"):
        stats.t_interval([1.0, float("nan")])


def test_bootstrap_interval_is_centred_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (32, 512):
        x = rng.normal(size=(n, 1))
        interval = stats.bootstrap_interval(lambda s: float(s.mean()), x, num_resamples=300)
        assert interval.low < interval.mean < interval.high
        assert interval.mean == pytest.approx(float(x.mean()))
        widths.append(interval.high - interval.low)
        # the mean's standard error is 1/sqrt(n): the interval is about ±1.96 of it
        assert widths[-1] == pytest.approx(2 * 1.96 / math.sqrt(n), rel=0.3)
    assert widths[1] < widths[0] / 3


def test_verdict_rule_gives_no_verdict_when_intervals_overlap():
    # unpaired (intervals): overlapping -> inconclusive, separated -> a verdict either way
    a, b = stats.Interval(1.0, 0.5, 1.5, 3, "t"), stats.Interval(1.4, 1.2, 1.6, 3, "t")
    assert stats.verdict(a, b)[0] == stats.INCONCLUSIVE
    c = stats.Interval(2.0, 1.8, 2.2, 3, "t")
    assert stats.verdict(a, c)[0] == stats.AGREES
    assert stats.verdict(c, a)[0] == stats.DISAGREES
    assert stats.verdict(c, a, lower_is_better=False)[0] == stats.AGREES
    # one seed has no interval: never a verdict
    assert stats.verdict(stats.t_interval([1.0]), c)[0] == stats.INCONCLUSIVE
    # paired: a consistent per-seed advantage is a verdict even when the marginal intervals overlap
    better, worse = [10.0, 20.0, 30.0], [10.5, 20.6, 30.4]
    assert stats.t_interval(better).overlaps(stats.t_interval(worse))
    assert stats.verdict(better, worse)[0] == stats.AGREES
    assert stats.verdict(worse, better)[0] == stats.DISAGREES
    assert stats.verdict([1.0, 3.0, 2.0], [2.0, 1.0, 2.1])[0] == stats.INCONCLUSIVE
    assert stats.all_agree([stats.AGREES, stats.INCONCLUSIVE]) == stats.INCONCLUSIVE
    assert stats.all_agree([stats.AGREES, stats.DISAGREES]) == stats.DISAGREES
    assert stats.all_agree([stats.AGREES, stats.AGREES]) == stats.AGREES


def test_condition_records_compare_paired_and_single_seed_uses_the_bootstrap():
    rows = [{"FVD-lab": v} for v in (10.0, 11.0, 12.0)]
    record = experiments.summarise(rows, "FVD-lab")
    assert record["values"] == [10.0, 11.0, 12.0] and record["n"] == 3 and record["low"] < 10.0
    single = experiments.summarise([{"FVD-lab": 5.0, "FVD-lab-ci": [4.0, 6.5]}], "FVD-lab")
    assert (single["low"], single["high"]) == (4.0, 6.5) and "bootstrap" in single["method"]
    other = experiments.summarise([{"FVD-lab": 9.0, "FVD-lab-ci": [8.0, 10.0]}], "FVD-lab")
    assert stats.compare_records(single, other)[0] == stats.AGREES
    close = experiments.summarise([{"FVD-lab": 6.0, "FVD-lab-ci": [5.0, 7.0]}], "FVD-lab")
    assert stats.compare_records(single, close)[0] == stats.INCONCLUSIVE


def test_records_that_name_their_seeds_are_paired_on_the_seeds_both_hold():
    def record(values, seeds):
        rows = [{"KID-app": v, "seed": s} for v, s in zip(values, seeds, strict=True)]
        return experiments.summarise(rows, "KID-app")

    full = record([1.0, 2.0, 3.0], [0, 1, 2])
    assert full["seeds"] == [0, 1, 2]
    # a condition missing seed 1 (a study that ran out of budget): paired on seeds 0 and 2, value by seed (a
    # consistent 0.1 advantage), where unequal lengths alone would fall back to overlapping intervals
    missing = record([1.1, 3.1], [0, 2])
    outcome, why = stats.compare_records(full, missing)
    assert outcome == stats.AGREES and why.endswith("(t over 2 paired seeds), seeds 0, 2")
    assert stats.compare_records(full, record([1.1, 1.9], [0, 1]))[0] == stats.INCONCLUSIVE
    # fewer than two seeds in common: the intervals, never a pairing of different seeds
    other = record([5.0, 6.0], [3, 4])
    assert "paired" not in stats.compare_records(record([1.0, 1.1], [0, 1]), other)[1]
    # records without seeds (older results.json): same length, paired in order, as before
    unnamed = [experiments.summarise([{"x": a}, {"x": a + 1}], "x") for a in (1.0, 1.1)]
    assert "seeds" not in unnamed[0] and stats.compare_records(*unnamed)[0] == stats.AGREES


def test_controls_break_only_the_time_axis():
    clips = torch.stack([_MovingSquares(8, frames=4)[i]["video"] for i in range(8)])
    frozen = C.control_clips(clips, "frozen")
    assert torch.equal(frozen, clips[:, :1].expand_as(clips))
    shuffled = C.control_clips(clips, "shuffled", seed=3)
    for i in range(len(clips)):  # the same frames of the same clip, in another order
        assert sorted(map(hash_frame, shuffled[i])) == sorted(map(hash_frame, clips[i]))
        assert not torch.equal(shuffled[i], clips[i])
    flicker = C.control_clips(clips, "flicker")
    for t in range(4):
        assert torch.equal(flicker[0, t], clips[t, t])  # frame t of video 0 comes from clip t
    assert torch.equal(C.control_clips(clips, "real"), clips)
    with pytest.raises(ValueError, match="unknown control"):
        C.control_clips(clips, "reversed")
    with pytest.raises(ValueError, match="at least as many clips"):
        C.control_clips(clips[:2], "flicker")


def hash_frame(frame: torch.Tensor) -> int:
    return hash(frame.numpy().tobytes())


def test_frozen_and_flickering_controls_score_worse_than_real_clips(tmp_path, monkeypatch):
    """Through evaluate_controls (lab classifier and all), cached per seed in its JSON file."""
    train, test = _MovingSquares(32), _MovingSquares(24)
    monkeypatch.setattr(scored, "real_datasets", lambda config, split, reference_seed=0: (train, test))
    real_classifier = lab.lab_classifier
    monkeypatch.setattr(
        scored.lab,
        "lab_classifier",
        lambda *a, **k: real_classifier(
            16,
            4,
            root=tmp_path,
            cache_dir=tmp_path,
            recipe=lab.LabTraining(steps=20, batch_size=8),
            progress=False,
        ),
    )
    monkeypatch.setattr(lab, "EmbeddedVideoDataset", lambda **kw: train)
    config = preset_config("quick", "video", resolution=16, num_frames=4, data_root=str(tmp_path))
    store = tmp_path / "controls.json"
    result = scored.evaluate_controls(config, 16, seeds=(0, 1), store=store, progress=False)
    assert set(result) == set(C.CONTROLS) and all(len(rows) == 2 for rows in result.values())
    table = experiments.summarise_controls(result, ("FVD-lab", "motion-ratio", "frame-cosine"))
    assert table["real"]["motion-ratio"]["mean"] == pytest.approx(1.0)
    assert table["frozen"]["motion-ratio"]["mean"] == 0.0  # frozen: no motion at all
    assert table["frozen"]["frame-cosine"]["mean"] == pytest.approx(1.0)
    real_cos = table["real"]["frame-cosine"]["mean"]
    assert real_cos < 1.0 and table["flicker"]["frame-cosine"]["mean"] < real_cos
    for row in result["real"]:
        assert row["FVD-lab-ci"][0] < row["FVD-lab"] < row["FVD-lab-ci"][1]
    # the same statistics as a generated set gets from evaluate_run
    clips = scored.subset_clips(test, 16, 0)
    assert (
        result["frozen"][0]["motion-energy"]
        == temporal_statistics(clips[:, :1].expand_as(clips))["motion-energy"]
    )
    # cached: a second call computes nothing
    monkeypatch.setattr(
        scored.lab, "lab_features", lambda *a, **k: pytest.fail("recomputed a cached control")
    )
    again = scored.evaluate_controls(config, 16, seeds=(0, 1), store=store, progress=False)
    assert again == result


def test_summary_gives_verdicts_only_when_intervals_allow():
    def rec(values):
        return experiments.summarise([{"m": v} for v in values], "m")

    r = {
        "metric": "FVD-lab",
        "lower_is_better": True,
        "seeds": [0, 1, 2],
        "eval_samples": 256,
        "curves": {
            "mixed": {"0": rec([50, 52, 51]), "1": rec([30, 31, 32]), "inf": rec([60, 62, 61])},
            "progressive": {"0": rec([50, 52, 51]), "2": rec([40, 60, 45]), "inf": rec([30, 70, 50])},
        },
        "temporal": {
            "motion-ratio": {"mixed": {"1": rec([1.2, 1.5, 1.3])}, "progressive": {"2": rec([5, 9, 7])}}
        },
        "scratch": rec([80, 81, 82]),
        "best_alpha": {"mixed": 1.0, "progressive": 2.0},
        "paper_alphas": {"mixed": 1.0, "progressive": 2.0},
        "controls": {
            "real": {"FVD-lab": rec([1, 1.1, 0.9])},
            "frozen": {"FVD-lab": rec([20, 21, 22])},
        },
    }
    text = summary.render_section("04_alpha_sweep", r)
    assert "- mixed: both extremes of alpha worse than the best middle alpha (1): **agrees**" in text
    assert (
        "- progressive: both extremes of alpha worse than the best middle alpha (2): **inconclusive**" in text
    )
    assert "within 2× real motion energy: **agrees**" in text  # mixed: [1.2, 1.5, 1.3] all below 2
    assert "within 2× real motion energy: **does not agree**" in text  # progressive: 5-9× real
    assert "ranks real clips above frozen clips: **agrees**" in text


def test_reproduce_knows_every_preset():
    from pyoco_lab import reproduce

    assert set(reproduce.PRESETS) == set(presets.SETTINGS)


def test_seeds_for_power_matches_the_paired_t_test_tables():
    # Cohen's tables / G*Power for a paired t-test, two-sided alpha 0.05: d = 1 -> 10 (power 0.80),
    # 13 (power 0.90); d = 0.5 -> 34. Only the ratio of difference to spread matters, and its sign does not.
    assert stats.seeds_for_power(1.0, 1.0) == 10 and stats.seeds_for_power(1.0, 1.0, power=0.9) == 13
    assert stats.seeds_for_power(1.0, 0.5) == stats.seeds_for_power(0.2, -0.1) == 34
    # a simulated check: with the returned n, about 80% of studies call the difference
    rng = np.random.default_rng(0)
    n = stats.seeds_for_power(1.0, 0.8)
    called = [stats.paired_difference(list(rng.normal(0.8, 1.0, n)), [0.0] * n).low > 0 for _ in range(2000)]
    assert 0.76 < np.mean(called) < 0.86
    with pytest.raises(ValueError, match="do not reach power"):
        stats.seeds_for_power(1.0, 0.01, max_seeds=50)
    with pytest.raises(ValueError, match="need spread > 0"):
        stats.seeds_for_power(0.0, 1.0)
