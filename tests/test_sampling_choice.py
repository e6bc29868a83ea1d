"""A shipped video model's recorded sampling prior (issue #38): chosen from a sweep's rows, stored in the
registry with its reason, used by ``generate`` by default, the training prior one flag away."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pyoco_lab import cli
from pyoco_lab.analysis import experiments, presets, sampling_priors, study_plans, study_runs
from pyoco_lab.noise import NoisePrior
from pyoco_lab.training import pretrained

ZOO = "zoo-32-progressive-2"


@pytest.fixture
def zoo_registry(tmp_path, monkeypatch) -> Path:
    """The lab's registry in a temporary weights folder, the zoo model's weights linked beside it."""
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(pretrained.WEIGHTS_DIR / pretrained.REGISTRY_FILE, weights)
    shipped = pretrained.get(ZOO)
    (weights / shipped.file).symlink_to(shipped.path)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    return weights


def _entry(sampled: str, seed: int, held: float, motion: float = 1.0, kid: float = 0.5) -> dict:
    measures = {"scene-held": held, "scene-held-ci": [0.0, 1.0], "motion-ratio": motion, "cut-rate": 0.1}
    measures |= {"motion-ratio-ci": [motion / 2, motion * 1.5], "KID-app": kid}
    measures |= {"KID-app-ci": [kid - 0.1, kid + 0.1]}
    entry = {"model": f"pretrained:{ZOO}", "trained_prior": "progressive-2", "sampled_prior": sampled}
    return {
        **entry,
        "seed": seed,
        "num_clips": 128,
        "sampler": {"kind": "deis", "steps": 6},
        "measures": measures,
    }


def test_the_reason_names_the_chosen_row_beside_the_training_priors():
    runs = [
        ("progressive-2", 0, 0.1),
        ("progressive-2", 1, 0.2),
        ("progressive-5", 0, 0.6),
        ("progressive-5", 1, 0.5),
    ]
    document = {"entries": {f"k{i}": _entry(*run) for i, run in enumerate(runs)}, "controls": {}}
    reason = sampling_priors.sampling_choice(
        document, f"pretrained:{ZOO}", NoisePrior("progressive", 5), "s.json"
    )
    assert reason.startswith("s.json, sampled progressive-5 (seeds 0, 1): scene-held 0.55 [")
    assert "its training prior progressive-2: scene-held 0.15 [" in reason
    with pytest.raises(ValueError, match="no row of pretrained:zoo-32-progressive-2 sampled progressive-10"):
        sampling_priors.sampling_choice(
            document, f"pretrained:{ZOO}", NoisePrior("progressive", 10), "s.json"
        )


def _document(*runs) -> dict:
    return {"entries": {f"k{i}": _entry(*run) for i, run in enumerate(runs)}, "controls": {}}


def test_the_rule_picks_the_most_held_scene_within_the_motion_band_and_content_not_worse():
    model = f"pretrained:{ZOO}"
    best = sampling_priors.best_sampling_prior
    # progressive-10 holds most but stands still (0.2x real motion): out of the band
    band = _document(
        ("progressive-2", 0, 0.3, 1.6), ("progressive-3", 0, 0.5, 0.9), ("progressive-10", 0, 0.9, 0.2)
    )
    assert best(band, model) == NoisePrior("progressive", 3.0)
    # progressive-3 holds more but its content is worse, intervals apart (KID-app 0.9 +- 0.1 vs 0.5 +- 0.1)
    worse = _document(("progressive-2", 0, 0.3, 1.6), ("progressive-3", 0, 0.5, 0.9, 0.9))
    assert best(worse, model) is None  # the training prior
    # nothing within the band: the training prior, even though another prior holds more
    still = _document(("progressive-2", 0, 0.3, 2.5), ("progressive-5", 0, 0.8, 0.3))
    assert best(still, model) is None
    # a tie goes to the training prior, then to the lower alpha
    tie = _document(
        ("progressive-2", 0, 0.5),
        ("progressive-3", 0, 0.5),
        ("progressive-2.5", 0, 0.6),
        ("progressive-4", 0, 0.6),
    )  # noqa: E501
    assert best(tie, model) == NoisePrior("progressive", 2.5)
    assert best(_document(("progressive-2", 0, 0.5), ("progressive-3", 0, 0.5)), model) is None
    with pytest.raises(ValueError, match="add --prior own"):
        best(_document(("progressive-3", 0, 0.5)), model)


def test_a_recorded_sampling_prior_is_stored_read_back_and_cleared(zoo_registry):
    assert pretrained.get(ZOO).sampling_prior == NoisePrior("progressive", 2.0)  # nothing recorded: training
    pretrained.record_sampling(ZOO, NoisePrior("progressive", float("inf")), "a sweep")
    stored = json.loads((zoo_registry / pretrained.REGISTRY_FILE).read_text())[ZOO]["sampling"]
    assert stored == {"noise": "progressive", "alpha": "inf", "chosen_by": "a sweep"}  # JSON has no Infinity
    assert pretrained.get(ZOO).sampling_prior == NoisePrior("progressive", float("inf"))
    pretrained.record_sampling(ZOO, None, "back")
    assert pretrained.get(ZOO).sampling == {}
    with pytest.raises(ValueError, match="is an image model"):
        pretrained.record_sampling("lab-tiny-32", NoisePrior("progressive", 5.0), "x")
    with pytest.raises(ValueError, match="no shipped model named 'nope'"):
        pretrained.record_sampling("nope", None, "x")


def test_generate_samples_a_shipped_model_with_its_recorded_prior_unless_told_otherwise(
    zoo_registry, tmp_path, capsys, monkeypatch
):
    pretrained.record_sampling(ZOO, NoisePrior("progressive", 5.0), "figures/levers/x/sweep.json, sampled …")
    base = ["generate", f"pretrained:{ZOO}", "--num", "1", "--sampler", "euler", "--steps", "2"]
    # without --out a shipped model's videos go to RUNS/generated/NAME/<prior>-... (as its help says)
    monkeypatch.setenv("PYOCO_RUNS", str(tmp_path / "runs"))
    assert cli.main(base) == 0
    assert (tmp_path / "runs" / "generated" / ZOO / "progressive-a5-euler2-seed0" / "samples.gif").is_file()
    capsys.readouterr()
    cases = [([], "progressive", 5.0, "recorded sampling prior"), (["--training-prior"], "progressive", 2.0,
             "training prior"), (["--alpha", "10"], "progressive", 10.0, "--noise/--alpha")]  # fmt: skip
    for i, (flags, kind, alpha, source) in enumerate(cases):
        out = tmp_path / f"g{i}"
        assert cli.main([*base, *flags, "--out", str(out)]) == 0
        record = json.loads((out / "generate.json").read_text())
        assert record["prior"] == {"kind": kind, "alpha": alpha} and record["prior_from"] == source
        assert record["run_prior"] == {"kind": "progressive", "alpha": 2.0}
    printed = capsys.readouterr().out
    assert (
        printed.count("recorded sampling prior progressive, alpha 5") == 1 and "--training-prior" in printed
    )
    assert cli.main(["pretrained", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"pretrained:{ZOO}"))
    assert "progressive, α = 2" in row and "progressive, α = 5" in row
    assert cli.main(["pretrained", "list", "--long"]) == 0
    listing = capsys.readouterr().out
    assert (
        "samples with progressive(alpha=5) by default" in listing and "figures/levers/x/sweep.json" in listing
    )


def test_recommend_is_refused_before_sampling_when_it_cannot_be_recorded(tmp_path, capsys):
    out = tmp_path / "o"
    for argv, message in [
        ([str(tmp_path), "--recommend", "own"], "must be pretrained:NAME"),
        ([f"pretrained:{ZOO}", "--prior", "own", "--recommend", "progressive:5"], "add --prior progressive:5"),  # noqa: E501
        ([f"pretrained:{ZOO}", "--prior", "progressive:5", "--recommend", "progressive:5", "--reinit", "2"],
         "cannot recommend"),
        ([f"pretrained:{ZOO}", "--prior", "progressive:5", "--recommend", "best"], "add --prior own"),
    ]:  # fmt: skip
        assert cli.main(["sampling-sweep", *argv, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err and not out.exists()


def test_fig6_samples_a_shipped_model_with_its_recorded_prior_and_says_so(zoo_registry):
    s = presets.settings("cpu-32")
    source = f"pretrained:{ZOO}"
    assert experiments.shown_prior(source, s) == (
        NoisePrior("progressive", 2.0),
        "trained and sampled progressive, α = 2",
    )  # nothing recorded: its training prior
    pretrained.record_sampling(ZOO, NoisePrior("progressive", 2.5), "a sweep")
    prior, caption = experiments.shown_prior(source, s)
    assert prior == NoisePrior("progressive", 2.5)
    assert caption == "trained progressive, α = 2; sampled progressive, α = 2.5 (its recorded prior)"
    training = replace(s, sample_with="training")
    assert experiments.shown_prior(source, training)[0] == NoisePrior("progressive", 2.0)
    with pytest.raises(ValueError, match="pass 'recorded' or 'training'"):
        experiments.shown_prior(source, replace(s, sample_with="own"))
    # cpu-32's Fig. 6 runs are the shipped zoo's recipe (sample_extra), the study's other runs are not
    runs = study_plans.sample_runs(s)
    assert {(spec.config.p_mean, spec.config.p_std) for spec in runs.values()} == {(0.5, 1.4)}
    sweep = study_runs.video_run(s, "mixed", 1.0)
    assert (sweep.config.p_mean, sweep.config.p_std) == (-1.2, 1.2)


def test_a_prior_labels_itself_for_figures():
    assert NoisePrior("iid", 0.0).label == "i.i.d."
    assert NoisePrior("mixed", 1.0).label == "mixed, α = 1"
    assert NoisePrior("progressive", float("inf")).label == "progressive, α = ∞"
