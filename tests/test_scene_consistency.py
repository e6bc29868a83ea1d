"""Scene consistency (issue #38): its definition on synthetic jumps, then its controls on real clips.

The slow tests train the appearance network at 16 px (shared with test_yardsticks' cache) and check what
the issue asks of the yardstick: real clips hold their scene, every splice of two scenes is caught, clips
that flicker between scenes never hold one, and frozen clips hold their scene while the motion measure
catches them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pyoco_lab import cli, noise
from pyoco_lab.analysis import sampling_priors
from pyoco_lab.metrics import appearance, controls, scene_consistency, yardsticks
from pyoco_lab.metrics.temporal import motion_energy


def _reference(threshold: float = 1.0) -> scene_consistency.SceneReference:
    return scene_consistency.SceneReference(
        reference_features=np.zeros((2, 3)),
        block_sizes=(3,),
        threshold=threshold,
        mean_jump=0.5,
        shot_jump_99=0.8,
    )


def test_a_clip_holds_its_scene_until_one_jump_crosses_the_threshold():
    jumps = np.array(
        [
            [0.1, 0.2, 0.3],  # holds
            [0.1, 1.5, 0.1],  # one cut
            [2.0, 2.0, 2.0],  # a cut at every frame
            [1.0, 1.0, 1.0],  # exactly at the threshold: not a cut
        ]
    )
    scores = scene_consistency.scene_scores_from_jumps(jumps, _reference())
    assert scores["scene-held"] == 0.5
    assert scores["cut-rate"] == pytest.approx((0 + 1 / 3 + 1 + 0) / 4)
    assert scores["jump-ratio"] == pytest.approx(jumps.mean() / 0.5)
    low, high = scores["scene-held-ci"]
    assert low < 0.5 < high and 0 <= low and high <= 1
    assert 0 <= scores["cut-rate-ci"][0] <= scores["cut-rate"] <= scores["cut-rate-ci"][1] <= 1
    # the frames that open another scene: t + 1 for a jump d_t above the threshold (what sheets frame in red)
    assert scene_consistency.cut_frames(jumps, 1.0) == [[], [2], [1, 2, 3], []]


def test_splices_join_different_scenes_at_a_frame_inside_the_clip():
    clips = torch.arange(6, dtype=torch.float32)[:, None, None, None, None].expand(6, 8, 3, 2, 2).clone()
    scenes = np.array([0, 0, 1, 1, 2, 2])
    spliced, cuts = scene_consistency.spliced_clips(clips, scenes, seed=3)
    assert ((1 <= cuts) & (cuts <= 7)).all()
    for i, k in enumerate(cuts):
        assert (spliced[i, :k] == i).all()  # its own frames up to the splice
        donor = int(spliced[i, k, 0, 0, 0])
        assert (spliced[i, k:] == donor).all() and scenes[donor] != scenes[i]  # another scene after it
    with pytest.raises(ValueError, match="at least two scenes"):
        scene_consistency.spliced_clips(clips, np.zeros(6), seed=0)
    jumps = np.zeros((6, 7))
    jumps[np.arange(6), cuts - 1] = 2.0
    assert scene_consistency.splices_caught(jumps, cuts, _reference()) == 1.0
    jumps[0, cuts[0] - 1] = 0.5  # one splice the measure misses
    assert scene_consistency.splices_caught(jumps, cuts, _reference()) == pytest.approx(5 / 6)


def test_control_verdicts_fail_when_a_control_holds_its_scene_like_real():
    real = {"scene-held": 0.98, "scene-held-ci": [0.94, 1.0], "cut-rate": 0.01, "cut-rate-ci": [0.0, 0.02]}
    broken = {"scene-held": 0.0, "scene-held-ci": [0.0, 0.03], "cut-rate": 0.5, "cut-rate-ci": [0.4, 0.6]}
    table = {"real": real, "spliced": broken, "flicker": broken}
    assert all(v["passes"] for v in scene_consistency.control_verdicts(table, "real").values())
    table["flicker"] = real
    verdicts = scene_consistency.control_verdicts(table, "real")
    assert verdicts["scene-held"] == {"passes": False, "failures": ["flicker"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("own", None),
        ("iid", ("iid", 0.0)),
        ("progressive:5", ("progressive", 5.0)),
        ("mixed:inf", ("mixed", np.inf)),
    ],
)
def test_sampling_priors_parse_own_iid_and_kind_alpha(text, expected):
    prior = sampling_priors.parse_prior(text)
    assert (prior if prior is None else (prior.kind, prior.alpha)) == expected


@pytest.mark.parametrize("text", ["progressive", "progressive:-1", "warped:2", "iid:2", "mixed:nan", "own:1"])
def test_a_bad_sampling_prior_is_one_line_naming_the_forms(text):
    with pytest.raises(ValueError, match="KIND:ALPHA"):
        sampling_priors.parse_prior(text)


def test_prior_names_are_file_name_safe():
    assert sampling_priors.prior_name(noise.NoisePrior("progressive", 2.0)) == "progressive-2"
    assert sampling_priors.prior_name(noise.NoisePrior("mixed", float("inf"))) == "mixed-inf"
    assert sampling_priors.prior_name(noise.NoisePrior("iid", 0.0)) == "iid"


def test_sampling_sweep_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code = cli.main(["sampling-sweep", "pretrained:zoo-32-iid", "--out", str(mine)])
    assert code == 2 and "did not write" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == [
        "notes.txt"
    ]
    code = cli.main(["sampling-sweep", "pretrained:lab-tiny-32", "--out", str(tmp_path / "new")])
    assert code == 2 and "image model" in capsys.readouterr().err and not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------------------------------
# The controls on real clips (slow: the appearance network is trained once per resolution)


@pytest.fixture(scope="module")
def net16():
    return appearance.appearance_net(16, progress=False)


@pytest.mark.slow
def test_real_clips_hold_their_scene_and_splices_and_flicker_do_not(net16):
    sets = yardsticks.real_sets(net16, 16, 128, num_frames=8, seed=0)
    reference = scene_consistency.scene_reference(
        net16, sets.reference_features, sets.reference_clips, sets.reference_scene_ids
    )

    def scores(clips):
        return scene_consistency.scene_scores(net16, reference, clips)

    real = scores(sets.real)
    assert real["scene-held"] >= 0.9
    assert scores(sets.held_out)["scene-held"] >= 0.9  # unseen scenes hold theirs too: no memorised threshold
    spliced, cuts = scene_consistency.spliced_clips(sets.real, sets.real_scene_ids, seed=0)
    jumps = scene_consistency.clip_jumps(net16, reference.reference_features, spliced)
    assert scene_consistency.splices_caught(jumps, cuts, reference) >= 0.95
    table = {
        "real": real,
        "spliced": scene_consistency.scene_scores_from_jumps(jumps, reference),
        "flicker": scores(controls.control_clips(sets.real, "flicker")),
    }
    verdicts = scene_consistency.control_verdicts(table, "real")
    assert verdicts["scene-held"]["passes"] and verdicts["cut-rate"]["passes"], verdicts
    # A still clip is one scene: this measure passes it, and the motion measure is what catches it.
    frozen = controls.control_clips(sets.real, "frozen")
    assert scores(frozen)["scene-held"] == 1.0 and float(motion_energy(frozen).mean()) == 0.0


@pytest.mark.slow
def test_a_sampling_sweep_stores_each_result_and_resumes_without_recomputing(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sampling-sweep", "pretrained:zoo-32-iid", "--prior", "own", "--prior", "progressive:5"]
    argv += ["--num", "8", "--steps", "2", "--batch-size", "8", "--out", str(out)]
    assert cli.main(argv) == 0
    document = json.loads((out / "sweep.json").read_text())
    assert len(document["entries"]) == 2 and len(document["calls"][0]["added"]) == 2
    # the call's wall time covers every evaluation it made (not the last one's); each is rounded to 0.1 s
    made = [e["wall_seconds"] for e in document["entries"].values()]
    assert document["calls"][0]["wall_seconds"] >= sum(made) - 0.05 * (len(made) + 1)
    sampled = sorted(e["sampled_prior"] for e in document["entries"].values())
    assert sampled == ["iid", "progressive-5"]
    for entry in document["entries"].values():
        assert entry["trained_prior"] == "iid" and entry["num_clips"] == 8
        assert {"scene-held", "scene-held-ci", "motion-ratio", "motion-ratio-ci", "KID-app"} <= set(
            entry["measures"]
        )
    assert {"spliced", "flicker", "frozen", sampling_priors.REAL_ROW} <= set(document["controls"])
    assert sorted(p.name for p in (out / "sheets").iterdir()) == [
        "pretrained-zoo-32-iid__iid.png",
        "pretrained-zoo-32-iid__progressive-5.png",
    ]
    assert "sampled progressive-5" in (out / "table.md").read_text()
    assert cli.main(argv) == 0  # a second call finds every result stored: nothing is sampled again
    document = json.loads((out / "sweep.json").read_text())
    assert len(document["entries"]) == 2 and document["calls"][1]["added"] == []
    capsys.readouterr()


def _entry(model, trained, sampled, seed, held):
    measures = {"scene-held": held, "scene-held-ci": [0.0, 1.0], "motion-ratio": 1.0 + seed / 10}
    measures.update(
        {"motion-ratio-ci": [0.5, 1.5], "KID-app": 0.5, "KID-app-ci": [0.4, 0.6], "cut-rate": 0.1}
    )
    sampler = {"kind": "deis", "steps": 6, "options": {}}
    entry = {"model": model, "trained_prior": trained, "sampled_prior": sampled, "seed": seed}
    return {**entry, "num_clips": 128, "sampler": sampler, "measures": measures}


def test_a_shipped_models_quality_record_names_each_sampled_prior_and_how_it_was_measured():
    runs = [
        ("progressive-2", 0, 0.1),
        ("progressive-2", 1, 0.2),
        ("progressive-5", 0, 0.6),
        ("progressive-5", 1, 0.5),
    ]
    entries = {f"k{i}": _entry("pretrained:zoo-x", "progressive-2", *run) for i, run in enumerate(runs)}
    real = {"scene-held": 0.99, "scene-held-ci": [0.96, 1.0]}
    document = {"entries": entries, "controls": {sampling_priors.REAL_ROW: real}}
    record = sampling_priors.quality_record(document, "pretrained:zoo-x", "figures/levers/x/sweep.json")
    assert set(record) == {
        "scene-held (own prior)",
        "scene-held (sampled progressive-5)",
        "scene-held measured_by",
    }
    assert record["scene-held (own prior)"].startswith("0.15 [")  # the mean over the two seeds, t interval
    assert (
        "sampling seeds 0, 1" in record["scene-held measured_by"]
        and "128 clips, deis 6" in record["scene-held measured_by"]
    )
    with pytest.raises(ValueError, match="no evaluation of pretrained:zoo-y"):
        sampling_priors.quality_record(document, "pretrained:zoo-y", "x")


def test_record_quality_is_refused_for_a_model_that_does_not_ship(tmp_path, capsys):
    code = cli.main(["sampling-sweep", str(tmp_path), "--record-quality", "--out", str(tmp_path / "o")])
    assert code == 2 and "pretrained:NAME" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_a_contact_sheet_of_a_run_is_one_file_name_not_a_path():
    assert sampling_priors.sheet_stem("runs/levers/my run") == "runs-levers-my-run"
    assert sampling_priors.sheet_stem("pretrained:zoo-32-iid") == "pretrained-zoo-32-iid"
