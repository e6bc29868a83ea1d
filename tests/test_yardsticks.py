"""The yardsticks (issue #22): each measure's definition on synthetic data, then the controls on real frames.

The slow tests train the appearance network on the embedded dataset at 16 px (the quick preset's size) and
check what the issue asks: noise, shuffled pixels, flat colour and a 4×4 blur each score clearly worse
than real frames (intervals that do not overlap); blurred clips — real motion, no content — score worse
than real clips on the content part; the two-sample test is at chance for real vs real and near 1 for noise.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pyoco_lab.analysis import image_model
from pyoco_lab.data import build_embedded_dataset
from pyoco_lab.evaluation import format_table
from pyoco_lab.metrics import appearance, controls, corruptions, yardsticks
from pyoco_lab.metrics.kernel_distance import kernel_distance
from pyoco_lab.metrics.memorisation import memorisation
from pyoco_lab.metrics.precision_recall import density_coverage, precision_recall
from pyoco_lab.metrics.temporal import temporal_statistics
from pyoco_lab.metrics.two_sample import clopper_pearson, indistinguishable, two_sample_test
from pyoco_lab.training import pretrained

# ---------------------------------------------------------------------------------------------------
# Definitions (fast, synthetic)


def test_kernel_distance_is_unbiased_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(300, 8))
    same = kernel_distance(a, b)
    assert same["ci95"][0] <= 0 <= same["ci95"][1]  # an unbiased estimate of 0: the interval holds 0
    assert abs(same["value"]) < 0.05
    near, far = kernel_distance(a, b + 0.5), kernel_distance(a, b + 1.0)
    assert same["ci95"][1] < near["ci95"][0] and near["value"] < far["value"]


def test_kernel_distance_resamples_whole_groups():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(64, 4)), rng.normal(size=(60, 4))
    grouped = kernel_distance(a, b, groups=6)
    assert grouped["value"] == pytest.approx(kernel_distance(a, b)["value"])  # the estimate is the same
    with pytest.raises(ValueError, match="groups of 7"):
        kernel_distance(a, b, groups=7)


def test_precision_recall_density_coverage_separate_quality_from_diversity():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 4))
    same = {
        **precision_recall(real, rng.normal(size=(500, 4))),
        **density_coverage(real, rng.normal(size=(500, 4))),
    }
    assert same["precision"] > 0.8 and same["recall"] > 0.8 and same["coverage"] > 0.8
    assert 0.7 < same["density"] < 1.3
    collapsed = rng.normal(size=(500, 4)) * 0.1  # all samples near the mode: good samples, no variety
    pr = precision_recall(real, collapsed)
    dc = density_coverage(real, collapsed)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.3 and dc["coverage"] < 0.3
    far = rng.normal(size=(500, 4)) + 10  # unlike any real sample
    assert precision_recall(real, far)["precision"] == 0 and density_coverage(real, far)["density"] == 0


def test_memorisation_flags_copies_and_passes_fresh_frames():
    g = torch.Generator().manual_seed(0)
    pool, fresh = torch.rand((200, 3, 8, 8), generator=g), torch.rand((100, 3, 8, 8), generator=g)
    real = memorisation(pool, fresh, torch.rand((100, 3, 8, 8), generator=g))
    assert 0.9 < real["nn_ratio"] < 1.1 and real["copy_fraction"] < 0.2
    copies = memorisation(pool, fresh, pool[:100])
    assert copies["nn_ratio"] < 1e-3 and copies["copy_fraction"] == 1


def test_clopper_pearson_is_the_exact_binomial_interval():
    low, high = clopper_pearson(50, 100)
    assert low == pytest.approx(0.3983, abs=1e-3) and high == pytest.approx(0.6017, abs=1e-3)
    assert clopper_pearson(0, 10)[0] == 0 and clopper_pearson(10, 10)[1] == 1


def test_two_sample_test_splits_groups_and_refuses_mismatched_items():
    g = torch.Generator().manual_seed(0)
    clips = torch.rand((32, 4, 3, 8, 8), generator=g) * 2 - 1
    result = two_sample_test(clips[:16], clips[16:], steps=5)
    assert result["n_test"] + result["n_train"] == 32
    with pytest.raises(ValueError, match="differ"):
        two_sample_test(clips, clips[:, :2])
    with pytest.raises(ValueError, match="at least 8"):
        two_sample_test(clips[:3], clips[3:6])


def test_frame_corruptions_keep_what_they_claim_to_keep():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand((6, 3, 16, 16), generator=g) * 2 - 1
    shuffled = corruptions.corrupt_frames(frames, "shuffled pixels")
    assert torch.equal(shuffled.flatten(2).sort(dim=2).values, frames.flatten(2).sort(dim=2).values)
    assert not torch.equal(shuffled, frames)
    flat = corruptions.corrupt_frames(frames, "flat colour")
    assert (
        torch.allclose(flat.mean(dim=(2, 3)), frames.mean(dim=(2, 3)))
        and flat.flatten(2).std(dim=2).max() == 0
    )
    noise = corruptions.corrupt_frames(frames, "noise")
    assert noise.mean(dim=(0, 2, 3)).sub(frames.mean(dim=(0, 2, 3))).abs().max() < 0.1
    blurred = corruptions.corrupt_frames(frames, "blur 4x4")
    assert blurred.shape == frames.shape and blurred.std() < frames.std()
    with pytest.raises(ValueError, match="unknown corruption"):
        corruptions.corrupt_frames(frames, "jpeg")


def test_blurred_clip_control_keeps_coarse_motion():
    x = torch.arange(16.0)
    # a smooth horizontal wave panning one pixel per frame: large structure, which a 4x4 blur keeps
    clips = torch.stack(
        [torch.sin(2 * torch.pi * (x - t) / 16).expand(2, 3, 16, 16) for t in range(8)], dim=1
    )
    blurred = controls.control_clips(clips, "blurred")
    assert blurred.shape == clips.shape
    assert temporal_statistics(blurred)["motion-energy"] > 0.5 * temporal_statistics(clips)["motion-energy"]


def test_appearance_space_weighs_every_block_alike():
    rng = np.random.default_rng(0)
    reference = np.concatenate([rng.normal(size=(300, 4)) * 100, rng.normal(size=(300, 16))], axis=1)
    embedded, other = appearance.embed(reference, reference[:10], block_sizes=(4, 16))
    block_energy = [(embedded[:, :4] ** 2).sum(axis=1).mean(), (embedded[:, 4:] ** 2).sum(axis=1).mean()]
    assert block_energy == pytest.approx([1.0, 1.0], rel=1e-6)
    assert np.allclose(other, embedded[:10])
    with pytest.raises(ValueError, match="dimensions"):
        appearance.embed(reference, block_sizes=(4, 4))


def test_control_verdicts_fail_a_yardstick_that_ties_with_real():
    table = {
        yardsticks.REAL_ROW: {"KID-app": 0.0, "KID-app-ci": [-0.1, 0.1], "copy-fraction": 0.05},
        "noise": {"KID-app": 5.0, "KID-app-ci": [4.0, 6.0], "copy-fraction": 0.0},
        "blur 4x4": {"KID-app": 0.05, "KID-app-ci": [0.0, 0.1], "copy-fraction": 0.1},
        yardsticks.COPIES_ROW: {"KID-app": 0.0, "KID-app-ci": [-0.1, 0.1], "copy-fraction": 1.0},
    }
    verdicts = yardsticks.control_verdicts(table)
    assert verdicts["KID-app"] == {"passes": False, "failures": ["blur 4x4"]}
    assert verdicts["copy-fraction"]["passes"]


# ---------------------------------------------------------------------------------------------------
# The controls on real frames (slow: the appearance network is trained once per resolution, ~1 minute)


@pytest.fixture(scope="module")
def net16():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    build_embedded_dataset(resolutions=(16,), progress=False)  # no-op when already built
    return appearance.appearance_net(16, progress=False)


@pytest.mark.slow
def test_frame_yardsticks_rank_every_corruption_below_real_frames(net16):
    """At the quick preset's image-model N (512 frames, 16 px): KID-app and C2ST-frame put noise, shuffled
    pixels, flat colour and a 4×4 blur clearly behind real frames; the memorisation check catches copies."""
    sets = yardsticks.real_sets(net16, 16, 512, seed=0)
    table = yardsticks.frame_controls(sets, net16, seed=0)
    real = table[yardsticks.REAL_ROW]
    for kind in corruptions.FRAME_CORRUPTIONS:
        assert table[kind]["KID-app-ci"][0] > real["KID-app-ci"][1], kind
        assert table[kind]["C2ST-frame-ci"][0] > real["C2ST-frame-ci"][1], kind
        assert table[kind]["precision-app"] < real["precision-app"], kind
    verdicts = yardsticks.control_verdicts(table)
    assert all(v["passes"] for v in verdicts.values()), verdicts
    # real vs real is near zero and its interval holds zero; the two-sample test is at chance
    assert real["KID-app-ci"][0] <= 0 <= real["KID-app-ci"][1]
    assert real["C2ST-frame-ci"][0] <= 0.5 <= real["C2ST-frame-ci"][1]
    assert table["noise"]["C2ST-frame"] > 0.9
    copies = table[yardsticks.COPIES_ROW]
    assert copies["copy-fraction"] > 0.9 > real["copy-fraction"] and copies["NN-ratio"] < 0.1


@pytest.mark.slow
def test_two_sample_test_is_at_chance_for_real_frames_and_near_one_for_noise(net16):
    sets = yardsticks.real_sets(net16, 16, 512, seed=1)
    same = two_sample_test(sets.reference[:512], sets.real, seed=1)
    assert indistinguishable(same), same
    noise = two_sample_test(sets.reference[:512], corruptions.corrupt_frames(sets.real, "noise"), seed=1)
    assert noise["accuracy"] > 0.9 and not indistinguishable(noise)


@pytest.mark.slow
def test_content_free_smooth_clips_score_worse_than_real_clips_on_content(net16):
    """Real motion on a noise image moves exactly like the real clips (same frame differences) but shows
    nothing: the content score must see it, at the quick preset's N (64 clips of 8 frames)."""
    sets = yardsticks.real_sets(net16, 16, 64, num_frames=8, seed=0)
    real = yardsticks.clip_scores(sets, net16, sets.real)
    for kind in ("motion on noise", "blurred"):
        clips = controls.control_clips(sets.real, kind)
        scores = yardsticks.clip_scores(sets, net16, clips)
        assert scores["KID-app-ci"][0] > real["KID-app-ci"][1], kind
        assert scores["C2ST-frame-ci"][0] > real["C2ST-frame-ci"][1], kind  # a clip's frames judged together
    moving_noise = controls.control_clips(sets.real, "motion on noise")
    motion = [temporal_statistics(x)["motion-energy"] for x in (sets.real, moving_noise)]
    assert motion[1] == pytest.approx(motion[0], rel=1e-5)  # the motion alone would not catch it


def test_the_evaluation_table_shows_the_floor_and_the_held_out_row_with_intervals():
    row = {"KID-app": 0.5, "KID-app-ci": [0.25, 0.75], "FD-motion-lab": 3.0}
    table = format_table(
        {"generated": row, "real-train": {"KID-app": 0.0, "KID-app-ci": [-0.1, 0.1]}, "real-test": row}
    )
    header, _, kid, motion = table.splitlines()[:4]
    assert "real (train)" in header and "held-out scenes" in header
    assert "0.5 [0.25, 0.75]" in kid and "0 [-0.1, 0.1]" in kid
    assert motion.split()[-2:] == ["–", "3"]  # the floor row has no motion score here: shown as missing


def test_registry_quality_replaces_the_retired_yardstick(tmp_path):
    row = {"KID-app": 0.5, "KID-app-ci": [0.4, 0.6], "C2ST-frame": 0.8, "C2ST-frame-ci": [0.75, 0.85]}
    row |= {"precision-app": 0.7, "recall-app": 0.4, "density-app": 0.9, "coverage-app": 0.6}
    row |= {"NN-ratio": 1.1, "copy-fraction": 0.02}
    quality = {
        "rows": {image_model.SAMPLES_ROW: row, yardsticks.REAL_ROW: row},
        "num_samples": 512,
        "num_reference": 1024,
        "controls_pass": {"KID-app": {"passes": True, "failures": []}},
    }
    record = image_model.registry_quality(quality, "a test")
    assert record["yardsticks KID-app, samples vs training frames"].startswith("0.500 [0.400, 0.600] (N 512")
    assert record["yardsticks controls"] == "every measure passed"
    (tmp_path / "registry.json").write_text(
        json.dumps({"m": {"quality": {"FD-frame-lab samples": "1.66", "inverted maps variance": 1.0}}})
    )
    pretrained.record_quality("m", record, tmp_path, drop=("FD-frame-lab",))
    stored = json.loads((tmp_path / "registry.json").read_text())["m"]["quality"]
    assert "FD-frame-lab samples" not in stored and stored["inverted maps variance"] == 1.0
    assert stored["yardsticks measured_by"] == "a test"
