"""The shipped alpha zoo (issue #24): the cpu-32 study's seed-0 finetunes at the study's length load by name,
verify against their recorded hash, stand in for exactly the runs that made them (so notebook 07 and the
explorer need no training), carry the committed evaluation that measured them, and generate videos."""

from __future__ import annotations

import torch

from pyoco_lab.analysis import presets, study_plans, study_runs
from pyoco_lab.training import load_denoiser, pretrained
from pyoco_lab.viz.explorer.generate import generate_video

# name -> (prior kind, alpha, finetuned from the image model?)
ZOO = {
    "zoo-32-iid": ("iid", 0.0, True),
    "zoo-32-mixed-1": ("mixed", 1.0, True),
    "zoo-32-progressive-2": ("progressive", 2.0, True),
    "zoo-32-inf": ("mixed", presets.INF, True),
    "zoo-32-scratch": ("iid", 0.0, False),
}


def test_the_alpha_zoo_loads_by_name_and_stands_in_for_the_cpu32_runs(tmp_path):
    s = presets.settings("cpu-32")
    shipped = {model.name for model in pretrained.current_models(phase="video")}
    assert set(ZOO) <= shipped, f"the alpha zoo must ship: missing {sorted(set(ZOO) - shipped)}"
    for name, (kind, alpha, finetuned) in ZOO.items():
        model = pretrained.get(name)
        pretrained.verify(model)
        spec = study_runs.video_run(s, kind, alpha, finetune=finetuned, seed=0)
        assert spec.config.steps == s.video_steps
        # the run a notebook would otherwise train: answered by the shipped file, nothing trained
        assert study_runs.run_weights(spec, tmp_path / "cache") == f"pretrained:{name}"
        assert not (tmp_path / "cache").exists()
        assert model.quality["measured_by"].startswith(f"figures/cpu-32/runs/{spec.label}-")
        assert "motion-ratio (1 = real motion)" in model.quality and "KID-app" in model.quality
        denoiser, config = load_denoiser(f"pretrained:{name}", device="cpu")
        assert (config.phase, config.noise, config.alpha) == ("video", kind, alpha)
        shape = (config.num_frames, 3, config.resolution, config.resolution)
        with torch.no_grad():
            video = generate_video(denoiser, kind, alpha, shape, sampler="euler", num_steps=2)
        assert video.shape == shape and torch.isfinite(video).all()


# The re-made zoo (issue #38): the same recipe at higher training noise levels. name -> (kind, alpha,
# finetuned, the sampling prior its sweep's rule recorded: (kind, alpha), None = its training prior)
HIGHSIGMA = {
    "zoo-32-highsigma-iid": ("iid", 0.0, True, None),
    "zoo-32-highsigma-mixed-1": ("mixed", 1.0, True, ("progressive", 2.5)),
    "zoo-32-highsigma-progressive-2": ("progressive", 2.0, True, ("progressive", 3.0)),
    "zoo-32-highsigma-inf": ("mixed", presets.INF, True, None),
    "zoo-32-highsigma-scratch": ("iid", 0.0, False, None),
}


def test_the_zoo_that_keeps_scenes_ships_supersedes_the_first_and_records_how_it_samples(tmp_path):
    s = presets.settings("cpu-32")
    fig6 = {spec.config.alpha: spec for spec in study_plans.sample_runs(s).values()}
    for name, (kind, alpha, finetuned, sampling) in HIGHSIGMA.items():
        model = pretrained.get(name)
        pretrained.verify(model)
        config = model.train_config
        assert (config.noise, config.alpha, config.p_mean, config.p_std) == (kind, alpha, 0.5, 1.4)
        assert ("init" in model.recipe) == finetuned and "--p-mean 0.5 --p-std 1.4" in model.recipe["command"]
        assert "higher noise levels" in model.recipe["chosen_by"]  # how the recipe was chosen (export --why)
        old = name.replace("highsigma-", "")
        assert pretrained.get(old).superseded_by == name  # the first zoo stays loadable, listed after
        recorded = model.sampling_prior if model.sampling else None
        assert (recorded.kind, recorded.alpha) == sampling if sampling else recorded is None
        assert "--recommend best" in model.sampling.get("chosen_by", "--recommend best")
        assert any(key.startswith("scene-held (") for key in model.quality)  # the sweep's rows
        # Fig. 6 of cpu-32 shows these models: its runs are exactly theirs, so nothing is trained
        if finetuned and alpha in fig6:
            assert study_runs.run_weights(fig6[alpha], tmp_path / "cache") == f"pretrained:{name}"
    assert not (tmp_path / "cache").exists()
    video_models = [m.name for m in pretrained.current_models(phase="video")]
    assert set(video_models[: len(HIGHSIGMA)]) == set(HIGHSIGMA)  # listed before the first zoo
