"""The shipped alpha zoo (issue #24): the cpu-32 study's seed-0 finetunes at the study's length load by name,
verify against their recorded hash, stand in for exactly the runs that made them (so notebook 07 and the
explorer need no training), carry the committed evaluation that measured them, and generate videos."""

from __future__ import annotations

import torch

from pyoco_lab.analysis import experiments
from pyoco_lab.training import load_denoiser, pretrained
from pyoco_lab.viz.explorer.generate import generate_video

# name -> (prior kind, alpha, finetuned from the image model?)
ZOO = {
    "zoo-32-iid": ("iid", 0.0, True),
    "zoo-32-mixed-1": ("mixed", 1.0, True),
    "zoo-32-progressive-2": ("progressive", 2.0, True),
    "zoo-32-inf": ("mixed", experiments.INF, True),
    "zoo-32-scratch": ("iid", 0.0, False),
}


def test_the_alpha_zoo_loads_by_name_and_stands_in_for_the_cpu32_runs(tmp_path):
    s = experiments.settings("cpu-32")
    shipped = {model.name for model in pretrained.current_models(phase="video")}
    assert set(ZOO) <= shipped, f"the alpha zoo must ship: missing {sorted(set(ZOO) - shipped)}"
    for name, (kind, alpha, finetuned) in ZOO.items():
        model = pretrained.get(name)
        pretrained.verify(model)
        spec = experiments.video_run(s, kind, alpha, finetune=finetuned, seed=0)
        assert spec.config.steps == s.video_steps
        # the run a notebook would otherwise train: answered by the shipped file, nothing trained
        assert experiments.run_weights(spec, tmp_path / "cache") == f"pretrained:{name}"
        assert not (tmp_path / "cache").exists()
        assert model.quality["measured_by"].startswith(f"figures/cpu-32/runs/{spec.label}-")
        assert "motion-ratio (1 = real motion)" in model.quality and "KID-app" in model.quality
        denoiser, config = load_denoiser(f"pretrained:{name}", device="cpu")
        assert (config.phase, config.noise, config.alpha) == ("video", kind, alpha)
        shape = (config.num_frames, 3, config.resolution, config.resolution)
        with torch.no_grad():
            video = generate_video(denoiser, kind, alpha, shape, sampler="euler", num_steps=2)
        assert video.shape == shape and torch.isfinite(video).all()
