"""Fidelity to the paper's evaluation: the sampler of each preset (A.3 / Table F), FVD only on 16-frame
clips with every other protocol deviation recorded, a seeded and recorded UCF-101 reference set ("train"
or the paper's "all" 13,320 videos), and Table 5's "Image Diffusion" row measured.

Runs are real on disk (config.json and checkpoints) with the tiny conv net of ``test_evaluate_cache`` in
place of the U-Net, fake TorchScript detectors with the literature's call conventions, and a tiny UCF-101
tree of generated videos (``test_data``'s writer), so each evaluation takes about a second on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch
from test_data import CLASSES, _write_avi
from test_evaluate_cache import (
    _I3D,
    FRAMES,
    RESOLUTION,
    _Clips,
    _save,
    _save_scripted,
    _TinyNet,
    tiny_run,  # noqa: F401 (a fixture: the video run of test_evaluate_cache)
)
from torch import nn

from pyoco_lab import edm, sampling
from pyoco_lab import evaluation as E
from pyoco_lab import training as T
from pyoco_lab.analysis import experiments, presets, results
from pyoco_lab.evaluation import pipeline, references
from pyoco_lab.metrics import lab, networks
from pyoco_lab.report import summary
from pyoco_lab.training import monitoring
from pyoco_lab.training import networks as training_networks
from pyoco_lab.training.checkpoints import write_run_meta


def gaussian_denoiser(x, sigma, **cond):  # the exact denoiser of N(0, 0.5²) data
    sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return x * 0.25 / (0.25 + sigma**2)


# ----------------------------------------------------------------------------------------------------
# 1. The sampler is part of each preset, and evaluation, summaries and training samples use it


def test_ucf_preset_samples_with_stochastic_deis_3kutta_25_steps():
    ucf = presets.SETTINGS["ucf"].sampler
    assert ucf == presets.UCF_SAMPLER
    assert (ucf.kind, ucf.step, ucf.steps) == ("stochastic", "rk3", 25)  # A.3
    assert (ucf.s_churn, ucf.s_tmin, ucf.s_tmax, ucf.s_noise) == (40.0, 0.05, 50.0, 1.003)  # EDM ImageNet-64
    assert ucf.options() == {"step": "rk3", "s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003}
    assert "stochastic DEIS 3kutta" in ucf.describe() and "25 steps" in ucf.describe()
    # smoke and standard keep Heun (no options, so their eval.json keys hold none); the two CPU presets
    # sample with DEIS tAB order 3 in 6 steps (6 network calls per clip, docs/reproduce.md "Presets")
    for name, steps in (("smoke", 4), ("standard", 18)):
        s = presets.SETTINGS[name]
        assert (s.sampler.kind, s.sample_steps, s.sampler.options()) == ("heun", steps, {})
    for name in ("quick", "cpu-long"):
        s = presets.SETTINGS[name]
        assert (s.sampler.kind, s.sample_steps, s.sampler.options()) == ("deis", 6, {"order": 3})
    # sample_steps stays a knob: it sets the steps of the preset's sampler, other fields kept.
    more = presets.settings("ucf", sample_steps=60)
    assert more.sampler == sampling.SamplerSpec(**{**more.sampler.__dict__, "steps": 60})
    assert more.sampler.kind == "stochastic" and more.sample_steps == 60
    chosen = presets.settings("quick", sampler={"kind": "stochastic", "steps": 10, "step": "rk3"})
    assert chosen.sampler.options()["step"] == "rk3" and chosen.sample_steps == 10
    with pytest.raises(ValueError, match="unknown sampler"):
        sampling.SamplerSpec("ddim")
    with pytest.raises(ValueError, match="sampler must be"):
        presets.settings("quick", sampler="stochastic")


def test_ucf_training_presets_draw_periodic_samples_with_the_evaluation_sampler():
    new_fields = {
        "sample_step",
        "sample_churn",
        "sample_churn_tmin",
        "sample_churn_tmax",
        "sample_churn_noise",
    }
    assert new_fields <= T.RESUMABLE_CHANGES  # they do not change the optimisation
    for preset in ("ucf-small", "ucf-medium", "ucf-large"):
        for phase in ("image", "video"):
            config = T.preset_config(preset, phase)
            assert config.sampler_spec() == presets.UCF_SAMPLER
    quick = T.preset_config("quick", "video")
    assert quick.sampler_spec().kind == "heun"


def test_save_samples_passes_the_stochastic_options_and_prior_churn(tmp_path, monkeypatch):
    calls = []
    real_sample = edm.sample

    def spy(denoiser, noise, **kwargs):
        calls.append(kwargs)
        return real_sample(denoiser, noise, **kwargs)

    monkeypatch.setattr(edm, "sample", spy)
    config = T.preset_config(
        "ucf-small",
        "video",
        resolution=8,
        num_frames=4,
        noise="mixed",
        alpha=math.inf,
        num_samples=2,
        sample_steps=3,
    )
    monitoring.save_samples(config, gaussian_denoiser, tmp_path, 1, "cpu", 0)
    (kwargs,) = calls
    assert kwargs["sampler"] == "stochastic" and kwargs["num_steps"] == 3 and kwargs["step"] == "rk3"
    assert (kwargs["s_churn"], kwargs["s_tmin"], kwargs["s_tmax"], kwargs["s_noise"]) == (40, 0.05, 50, 1.003)
    # churn noise from the run's prior: mixed alpha = inf draws the same noise in every frame
    fresh = kwargs["noise_sampler"](torch.zeros(1, 4, 3, 8, 8), torch.tensor(1.0))
    assert torch.equal(fresh[:, 0], fresh[:, 3])
    assert list((tmp_path / "samples").iterdir())
    # a Heun run passes no stochastic options at all
    calls.clear()
    quick = T.preset_config("quick", "video", resolution=8, num_frames=4)
    monitoring.save_samples(quick, gaussian_denoiser, tmp_path, 2, "cpu", 0)
    assert calls[0]["sampler"] == "heun" and set(calls[0]) == {"sampler", "num_steps"}


def test_experiments_evaluate_passes_the_presets_sampler_and_reference(monkeypatch):
    seen = {}
    monkeypatch.setattr(E, "evaluate", lambda request, **how: seen.update(how, request=request) or {})
    experiments.evaluate("some/run", presets.settings("ucf"), progress=False)
    request = seen["request"]
    assert request.source == "some/run" and seen["reuse"] is True and request.num_samples == 2048
    assert request.sampler == "stochastic" and request.num_steps == 25
    assert request.sampler_options == presets.UCF_SAMPLER.options()
    assert request.reference_split == "all" and request.reference_seed == 0
    experiments.evaluate("some/run", presets.settings("quick"), progress=False)
    request = seen["request"]
    assert (request.sampler, request.num_steps, request.sampler_options) == ("deis", 6, {"order": 3})
    assert request.reference_split == "train"


def _record(value: float) -> dict:
    return experiments.summarise([{"m": value}], "m")


def _sweep_payload():
    return {
        "metric": "FVD-lab",
        "lower_is_better": True,
        "seeds": [0],
        "curves": {"mixed": {"0": _record(9.0), "1": _record(5.0), "inf": _record(12.0)}},
        "scratch": _record(20.0),
        "best_alpha": {"mixed": "1"},
    }


def test_summary_states_the_sampler_of_fig7_table5_and_fig8(tmp_path):
    rows = {
        k: {"FVD-lab": _record(v)}
        for k, v in (("scratch", 9.0), ("finetune", 7.0), ("mixed", 5.0), ("progressive", 6.0))
    }
    strategies = {
        "metrics": ["FVD-lab"],
        "paper_column": {"FVD-lab": "FVD"},
        "lower_is_better": {"FVD-lab": True},
        "rows": rows,
    }
    sizes = {
        "metric": "FVD-lab",
        "sizes": ["tiny"],
        "parameters": [1e6],
        "results": {"scratch": [_record(3.0)]},
    }
    results.save_results(tmp_path / "04_alpha_sweep", "04_alpha_sweep", "ucf", _sweep_payload())
    results.save_results(tmp_path / "05_strategies", "05_strategies", "ucf", strategies)
    recorded = {**sizes, "sampler": sampling.SamplerSpec("euler", 3).record()}
    results.save_results(tmp_path / "06_model_size", "06_model_size", "quick", recorded)
    text = summary.write_summary(tmp_path, preset="ucf").read_text()
    sections = text.split("## ")[1:]
    assert len(sections) == 3
    for section in sections[:2]:  # not recorded: the preset's sampler, said so
        assert "- sampler: stochastic DEIS 3kutta (EDM Alg. 2), 25 steps (S_churn 40" in section
        assert "preset `ucf`'s, not recorded" in section
    assert "- sampler: Euler, 3 steps (paper: stochastic DEIS 3kutta, 25 steps" in sections[2]


# ----------------------------------------------------------------------------------------------------
# 2. FVD only under its name on 16-frame clips; every other deviation is recorded


class _Inception(nn.Module):
    """Inception's call convention (uint8 (N, 3, H, W), return_features), with an output width of choice."""

    def __init__(self, width: int = 2048):
        super().__init__()
        self.head = nn.Linear(3, width)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.head(x.float().mean(dim=(2, 3)) / 255.0)


def _clips(n, frames, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, frames, 3, 8, 8, generator=g) * 2 - 1


def test_i3d_distance_on_other_clip_lengths_is_not_called_fvd(tmp_path):
    _save_scripted(_I3D(400), tmp_path / networks.I3D.filename)
    values, skipped = networks.standard_metrics(
        _clips(6, 8, 0), _clips(6, 8, 1), directory=tmp_path, progress=False
    )
    assert "FVD" not in values and values["FVD-8f"] > 0
    assert (
        "16-frame clips" in skipped["FVD"]
        and "FVD-8f" in skipped["FVD"]
        and "not comparable" in skipped["FVD"]
    )
    values, skipped = networks.standard_metrics(
        _clips(6, 16, 0), _clips(6, 16, 1), directory=tmp_path, progress=False
    )
    assert values["FVD"] > 0 and "FVD" not in skipped and not any(k.startswith("FVD-") for k in values)
    assert networks.fvd_name(16) == "FVD" and networks.fvd_name(8) == "FVD-8f"


def test_protocol_record_names_each_deviation():
    paper = dict(num_frames=16, num_generated=2048, num_real=2048, resolution=64, dataset="ucf101")
    assert networks.protocol_record(**paper, reference_split="all") == {
        "name": "fvd2048_16f",
        "follows": True,
        "deviations": [],
    }
    quick = networks.protocol_record(
        num_frames=8,
        num_generated=32,
        num_real=500,
        resolution=32,
        dataset="embedded",
        reference_split="train",
    )
    assert not quick["follows"] and len(quick["deviations"]) == 6
    text = " ".join(quick["deviations"])
    fragments = ("8-frame clips", "FVD-8f", "32 generated clips", "500 real reference clips", "32x32 px")
    for fragment in (*fragments, "embedded dataset", "train split only"):
        assert fragment in text


def test_evaluation_records_its_protocol_and_the_table_prints_it(tiny_run):  # noqa: F811
    run, weights, _ = tiny_run
    _save_scripted(_I3D(400), weights / networks.I3D.filename)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", networks.WeightsHashWarning)
        result = E.evaluate_run(run, 4, "heun", 2, device="cpu", progress=False)
    protocol = result["settings"]["protocol"]
    assert protocol["name"] == "fvd2048_16f" and not protocol["follows"]
    assert any(f"{FRAMES}-frame clips" in d for d in protocol["deviations"])
    assert f"FVD-{FRAMES}f" in result["generated"] and "FVD" not in result["generated"]
    table = E.format_table(result)
    assert f"FVD-{FRAMES}f" in table and "not the fvd2048_16f protocol" in table
    assert (
        json.loads((run / E.EVAL_FILE).read_text())[result["settings"]["key"]]["settings"]["protocol"]
        == protocol
    )


# ----------------------------------------------------------------------------------------------------
# 3. UCF-101: a seeded, recorded reference set from "train" (trainlist01) or "all" (13,320 videos)


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory):
    """classInd + trainlist01 (2 videos per class) + testlist01 (1 per class) of short generated videos."""
    root = tmp_path_factory.mktemp("ucf-eval")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    train, test = [], []
    for label, name in enumerate(CLASSES):
        (root / "UCF-101" / name).mkdir(parents=True)
        for group in (1, 2, 3):
            rel = f"{name}/v_{name}_g0{group}_c01.avi"
            _write_avi(root / "UCF-101" / rel, frames=20 + 3 * group, phase=label, size=(64, 48))
            if group == 1:
                test.append(rel)  # testlists carry no label
            else:
                train.append(f"{rel} {label + 1}")
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def ucf_run(tmp_path, monkeypatch, ucf_tree):
    monkeypatch.setattr(
        training_networks, "build_network", lambda config, num_classes=0: edm.Denoiser(_TinyNet())
    )
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("PYOCO_WEIGHTS", str(weights))
    _save_scripted(_I3D(400), weights / networks.I3D.filename)
    config = T.preset_config(
        "quick",
        "video",
        dataset="ucf101",
        data_root=str(ucf_tree),
        resolution=RESOLUTION,
        num_frames=FRAMES,
        noise="mixed",
        alpha=1.0,
        steps=100,
    )
    run = tmp_path / "run"
    write_run_meta(run, config, None, 0, 1)
    _save(run, 100, 0.01)
    return run


def _ucf_evaluate(run, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", networks.WeightsHashWarning)
        return E.evaluate_run(run, 3, "euler", 2, device="cpu", progress=False, **kwargs)


def test_ucf_reference_clips_are_seeded_recorded_and_keyed(ucf_run):
    fvd = f"FVD-{FRAMES}f"
    torch.manual_seed(1)  # the global RNG must not choose the real clips
    first = _ucf_evaluate(ucf_run, write=False)
    torch.manual_seed(2)
    again = _ucf_evaluate(ucf_run, write=False)
    assert first["generated"][fvd] == again["generated"][fvd]
    assert first["real-test"][fvd] == again["real-test"][fvd]
    settings = first["settings"]
    assert (settings["reference_split"], settings["reference_seed"]) == ("train", 0)
    assert settings["num_real_reference"] == 6 and not settings["real_test_in_reference"]
    # Another reference seed: other clip starts, another number, another key.
    other_seed = _ucf_evaluate(ucf_run, reference_seed=1, write=False)
    assert other_seed["settings"]["reference_seed"] == 1 and other_seed["settings"]["key"] != settings["key"]
    assert other_seed["generated"][fvd] != first["generated"][fvd]
    # The paper's "all 13,320 videos": train + test of split 1, recorded as such.
    everything = _ucf_evaluate(ucf_run, reference_split="all")
    assert (
        everything["settings"]["reference_split"] == "all"
        and everything["settings"]["num_real_reference"] == 9
    )
    assert everything["settings"]["real_test_in_reference"]
    assert everything["settings"]["key"] not in (settings["key"], other_seed["settings"]["key"])
    assert not any("split only" in d for d in everything["settings"]["protocol"]["deviations"])
    assert any("split only" in d for d in settings["protocol"]["deviations"])
    key = E.evaluation_key(ucf_run, 3, "euler", 2, device="cpu", reference_split="all")
    assert key.parts["protocol"]["reference_split"] == "all" and key.parts["protocol"]["reference_seed"] == 0
    assert E.cached_evaluation(ucf_run, 3, "euler", 2, device="cpu", reference_split="all") is not None
    with pytest.raises(ValueError, match="reference_split"):
        E.evaluation_key(ucf_run, 3, "euler", 2, device="cpu", reference_split="trainlist02")


def test_ucf_clip_start_depends_on_the_video_not_its_index(ucf_tree):
    from pyoco_lab.data import UCF101Clips

    options = dict(resolution=8, num_frames=4, seed=3)
    test, everything = (
        UCF101Clips(ucf_tree, split="test", **options),
        UCF101Clips(ucf_tree, split="all", **options),
    )
    where = {item: i for i, item in enumerate(map(str, everything.paths))}
    for i, path in enumerate(test.paths):  # index i in "test", another index in "all": the same clip
        assert torch.equal(test[i]["video"], everything[where[str(path)]]["video"])


# ----------------------------------------------------------------------------------------------------
# 4. Table 5's "Image Diffusion" row: the image model's frame metrics, cached in its eval.json


@pytest.fixture
def image_run(tmp_path, monkeypatch):
    monkeypatch.setattr(
        training_networks, "build_network", lambda config, num_classes=0: edm.Denoiser(_TinyNet())
    )
    monkeypatch.setattr(references, "EmbeddedVideoDataset", lambda root, res, split, frames: _Clips(split))

    def classifier(*args, **kwargs):
        torch.manual_seed(0)
        return lab.LabClassifier(num_classes=3, width=4)

    monkeypatch.setattr(lab, "lab_classifier", classifier)
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("PYOCO_WEIGHTS", str(weights))
    config = T.preset_config("quick", "image", resolution=RESOLUTION, num_frames=FRAMES, steps=100)
    run = tmp_path / "image-run"
    write_run_meta(run, config, None, 0, 1)
    _save(run, 100, 0.01)
    calls = []
    real_sample = sampling.sample_videos
    monkeypatch.setattr(pipeline, "sample_videos", lambda *a, **k: calls.append(k) or real_sample(*a, **k))
    return run, weights, calls


def test_lab_frame_features_are_the_frame_features_of_clips():
    torch.manual_seed(0)
    classifier = lab.LabClassifier(num_classes=3, width=4)
    clips = torch.rand(3, 4, 3, 16, 16) * 2 - 1
    np.testing.assert_allclose(
        lab.lab_frame_features(classifier, clips.flatten(0, 1)),
        lab.lab_features(classifier, clips).frame,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        lab.lab_frame_features(classifier, clips)


def test_image_model_row_is_measured_and_cached(image_run, monkeypatch):
    run, weights, calls = image_run
    # 16-d "Inception" features: the code path of the real 2048-d ones without minutes of 2048² sqrtm
    monkeypatch.setattr(networks, "INCEPTION", dataclasses.replace(networks.INCEPTION, width=16))
    _save_scripted(_Inception(16), weights / networks.INCEPTION.filename)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", networks.WeightsHashWarning)
        result = E.evaluate_run(run, 8, "heun", 2, device="cpu", progress=False)
        again = E.evaluate_run(run, 8, "heun", 2, device="cpu", progress=False, reuse=True)
    assert len(calls) == 1 and again == json.loads(json.dumps(result))  # the second one is read back
    yardstick_keys = {
        "KID-app", "KID-app-ci", "FD-app", "C2ST-frame", "C2ST-frame-ci", "precision-app", "recall-app",
        "density-app", "coverage-app", "NN-ratio", "copy-fraction",
    }  # fmt: skip
    assert set(result["generated"]) == {"FD-frame-lab", "FD-frame-lab-ci", "FID-frame"} | yardstick_keys
    # the held-out row: no FD-frame-lab interval kept; the real-train row (the floor) has the yardsticks only
    assert set(result["real-test"]) == {"FD-frame-lab", "FID-frame"} | yardstick_keys
    assert set(result["real-train"]) == yardstick_keys
    assert {"FVD", "IS", "FVD-lab", "IS-lab"} <= set(result["skipped"])
    settings = result["settings"]
    assert settings["kind"] == "image" and settings["key"].startswith(
        "image-heun-2steps-n8-seed0-step0000100-"
    )
    assert settings["num_frames"] == FRAMES and settings["reference_split"] == "train"
    assert json.loads((run / E.EVAL_FILE).read_text()).keys() == {settings["key"]}
    # The real row is FD-frame-lab of held-out frames against the train split's frames, as for video runs.
    classifier = lab.lab_classifier()
    reference = lab.lab_features(classifier, _Clips("train"))
    test_frames = E.subset_clips(_Clips("test"), 2, 0).flatten(0, 1)  # 8 frames = 2 clips of 4
    expected = lab.frame_distance(reference.frame, lab.lab_frame_features(classifier, test_frames))
    assert result["real-test"]["FD-frame-lab"] == pytest.approx(expected)
    assert result["generated"]["FD-frame-lab"] > result["real-test"]["FD-frame-lab"]  # noise-like samples


def test_experiments_image_model_scores_use_the_presets_sampler_and_frame_count(
    image_run, monkeypatch, tmp_path
):
    run, _, calls = image_run
    monkeypatch.setattr(experiments, "ensure_image_model", lambda s, cache_dir, progress=True: run)
    s = presets.settings("smoke", eval_samples=2, sampler={"kind": "euler", "steps": 2})
    scores = experiments.image_model_scores(s, tmp_path, progress=False)
    assert {"FD-frame-lab", "FD-frame-lab-ci", "KID-app", "KID-app-ci"} <= set(scores)
    assert "FID-frame" not in scores  # no Inception file: FID-frame is skipped
    low, high = scores["FD-frame-lab-ci"]
    assert low <= scores["FD-frame-lab"] <= high
    (kwargs,) = calls
    assert (kwargs["sampler"], kwargs["num_steps"]) == ("euler", 2)
    entry = next(iter(json.loads((run / E.EVAL_FILE).read_text()).values()))
    assert entry["settings"]["num_samples"] == 2 * experiments.clip_length(s) == 2 * FRAMES
    assert experiments.image_model_scores(s, tmp_path, progress=False) == scores and len(calls) == 1
    # an entry stored before rows carried their interval is measured again, not reused without one
    store = json.loads((run / E.EVAL_FILE).read_text())
    for entry in store.values():
        del entry["generated"]["FD-frame-lab-ci"]
    (run / E.EVAL_FILE).write_text(json.dumps(store))
    assert "FD-frame-lab-ci" in experiments.image_model_scores(s, tmp_path, progress=False)
    assert len(calls) == 2


def test_a_shipped_image_model_keeps_its_evaluations_in_a_given_folder(tmp_path):
    registry = T.pretrained.registry()
    if not registry:
        pytest.skip("this installation ships no pretrained image model")
    name = next(iter(registry))
    with pytest.raises(ValueError, match="store_dir"):
        E.evaluation_key(f"pretrained:{name}", device="cpu")
    key = E.evaluation_key(f"pretrained:{name}", 8, device="cpu", store_dir=tmp_path)
    assert key.run_dir == tmp_path and f"pretrained-{name}" in key.key and key.key.startswith("image-")
    assert key.parts["checkpoint"]["ema_sha256"] == registry[name].sha256
