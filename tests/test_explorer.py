"""The explorer's logic without a browser: video helpers, figures, widgets, Generate and inversion.

Models are replaced by the *exact* denoiser of Gaussian data x0 ~ N(0, sigma_data² I),
D(x; sigma) = x sigma_data² / (sigma² + sigma_data²): a real denoiser whose ODE is linear per
pixel, so what sampling and inversion must do to frame correlations is known in closed form.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pyoco_lab import noise as noise_lib
from pyoco_lab.media import save_video, tile_videos, to_uint8_frames
from pyoco_lab.training import pretrained
from pyoco_lab.viz import explorer as ex
from pyoco_lab.viz.figures import (
    correlation_figure,
    correlation_figure_plotly,
    cosine_similarity_matrix,
    mean_by_distance,
    save_figure,
)
from pyoco_lab.viz.video import video_grid, video_html

SIGMA_DATA = 0.5
REPO = Path(__file__).resolve().parents[1]


def gaussian_denoiser(x, sigma, **cond):
    sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return x * SIGMA_DATA**2 / (sigma**2 + SIGMA_DATA**2)


def video_config(**overrides):
    from pyoco_lab.training import TrainConfig

    values = dict(phase="video", resolution=8, num_frames=4, noise="progressive", alpha=2.0)
    return TrainConfig(**{**values, **overrides})


# ----------------------------------------------------------------------------------------------
# video


def test_to_uint8_maps_value_range_and_grey_to_rgb():
    video = torch.tensor([-1.0, 0.0, 1.0, 5.0]).reshape(4, 1, 1, 1)
    frames = to_uint8_frames(video)
    assert frames.shape == (4, 1, 1, 3)
    assert frames[:, 0, 0, 0].tolist() == [0, 128, 255, 255]  # 0 -> 127.5 rounds to 128; 5 clips
    assert (frames[..., 0] == frames[..., 2]).all()


def test_to_uint8_rejects_batches_and_wrong_channels():
    with pytest.raises(ValueError, match="videos\\[0\\]"):
        to_uint8_frames(torch.zeros(2, 4, 3, 8, 8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        to_uint8_frames(torch.zeros(4, 2, 8, 8))


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_save_video_round_trip(tmp_path, suffix):
    import imageio.v3 as iio

    # Flat grey levels survive GIF palettes and H.264 almost exactly.
    levels = torch.linspace(-0.8, 0.8, 6)
    video = levels.reshape(6, 1, 1, 1).expand(6, 3, 16, 16)
    path = save_video(video, tmp_path / f"clip{suffix}", fps=5)
    frames = iio.imread(path, index=None, **({"plugin": "pyav"} if suffix == ".mp4" else {}))
    assert frames.shape[:3] == (6, 16, 16)
    expected = (levels + 1) / 2 * 255
    measured = torch.tensor(frames[..., :3].reshape(6, -1).mean(axis=1), dtype=torch.float32)
    assert torch.allclose(measured, expected, atol=4.0)  # 8-bit rounding + codec/palette error
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was moved into place


def test_save_video_rejects_unknown_suffix_and_keeps_good_file(tmp_path):
    good = save_video(torch.zeros(2, 3, 4, 4), tmp_path / "a.gif")
    before = good.read_bytes()
    with pytest.raises(ValueError, match=".gif or .mp4"):
        save_video(torch.zeros(2, 3, 4, 4), tmp_path / "a.avi")
    with pytest.raises(ValueError, match="value_range"):
        save_video(torch.zeros(2, 3, 4, 4), good, value_range=(1.0, 1.0))
    assert good.read_bytes() == before


def test_tile_videos_side_by_side_in_sync():
    a, b = torch.full((3, 3, 4, 5), -1.0), torch.full((3, 3, 4, 5), 1.0)
    tiled = tile_videos([a, b], padding=2)
    assert tiled.shape == (3, 4, 5 + 2 + 5, 3)
    assert (tiled[:, :, :5] == 0).all() and (tiled[:, :, 5:7] == 255).all() and (tiled[:, :, 7:] == 255).all()
    with pytest.raises(ValueError, match="same \\(frames, height\\)"):
        tile_videos([a, torch.zeros(4, 3, 4, 5)])


def test_video_html_and_grid_embed_data():
    video = torch.zeros(3, 3, 8, 8)
    assert 'src="data:image/gif;base64,' in video_html(video, caption="x")
    assert "video/mp4" in video_html(video, fmt="mp4")
    grid = video_grid([video, video], ["α = 0", "α = ∞"], title="t")
    assert grid.count("<img") == 1 and "α = ∞" in grid
    with pytest.raises(ValueError, match="one label per video"):
        video_grid([video], ["a", "b"])


# ----------------------------------------------------------------------------------------------
# figures


def test_mean_by_distance_recovers_progressive_curve():
    matrix = noise_lib.frame_correlation("progressive", 6, 2.0)
    r = 2 / math.sqrt(5)
    assert np.allclose(mean_by_distance(matrix), [r**d for d in range(6)])
    with pytest.raises(ValueError, match="square"):
        mean_by_distance(torch.zeros(2, 3))


def test_cosine_similarity_matrix():
    maps = torch.stack([torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0]), torch.tensor([0.0, -3.0])])
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(cosine_similarity_matrix(maps), expected)


def test_correlation_figures(tmp_path):
    import matplotlib.pyplot as plt

    closed = noise_lib.frame_correlation("mixed", 5, 1.0)
    fig = correlation_figure({"a": closed, "b": closed})
    assert len(fig.axes) == 4  # two heatmaps, the distance curve, the colorbar
    path = save_figure(fig, tmp_path / "sub" / "fig.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plt.close(fig)
    plotly_fig = correlation_figure_plotly({"a": closed})
    assert [t.type for t in plotly_fig.data] == ["heatmap", "scatter"]
    assert np.allclose(plotly_fig.data[1].y, [1.0, 0.5, 0.5, 0.5, 0.5])


# ----------------------------------------------------------------------------------------------
# the prior explorer


def test_parse_alpha():
    assert ex.parse_alpha("inf") == math.inf and ex.parse_alpha("∞") == math.inf
    assert ex.parse_alpha(0.5) == 0.5
    with pytest.raises(ValueError, match=">= 0"):
        ex.parse_alpha(-1)


def test_prior_explorer_updates_live():
    e = ex.PriorExplorer("progressive", 2.0, num_frames=8, seed=1)
    assert e.state["adjacent_closed"] == pytest.approx(2 / math.sqrt(5), abs=1e-6)

    e.alpha_slider.value = 0.5  # observe handler: no explicit update call
    expected = 0.5 / math.sqrt(1.25)
    assert e.state["alpha"] == pytest.approx(0.5)
    assert e.state["adjacent_closed"] == pytest.approx(expected, abs=1e-6)
    # 4 * 3 * 32² = 12288 values per frame: the estimate's std is (1 - r²)/sqrt(n) < 0.01.
    assert e.state["adjacent_empirical"] == pytest.approx(expected, abs=0.05)
    # The plotly traces hold the new matrices.
    assert np.allclose(e.figure.data[0].z, noise_lib.frame_correlation("progressive", 8, 0.5).numpy())
    assert np.allclose(e.figure.data[2].y, [expected**d for d in range(8)])
    assert json.loads(_data_state(e.readout.value))["alpha"] == pytest.approx(0.5)

    e.alpha_mode.value = "zero"
    assert e.alpha == 0.0 and e.state["adjacent_closed"] == 0.0
    e.alpha_mode.value = "inf"
    assert e.state["alpha"] == "inf" and e.state["adjacent_empirical"] == pytest.approx(1.0)
    e.alpha_slider.value = 1.0  # moving the slider leaves the inf end
    assert e.alpha_mode.value == "slider" and e.state["adjacent_closed"] == pytest.approx(0.7071068)

    e.kind.value = "mixed"
    assert e.state["adjacent_closed"] == pytest.approx(0.5)
    e.num_frames.value = 5
    assert e.figure.data[0].z.shape == (5, 5)
    assert e.noise_video.value[:6] == b"GIF89a"


def _data_state(markup: str) -> str:
    import html

    start = markup.index('data-state="') + len('data-state="')
    return html.unescape(markup[start : markup.index('"', start)])


def test_prior_explorer_starts_at_alpha_ends():
    assert ex.PriorExplorer("mixed", "inf", num_frames=3).alpha_mode.value == "inf"
    zero = ex.PriorExplorer("mixed", 0, num_frames=3)
    assert zero.alpha_mode.value == "zero" and zero.state["adjacent_closed"] == 0.0


# ----------------------------------------------------------------------------------------------
# runs, Generate, inversion


def _fake_run(root, name, config):
    """The on-disk layout of a `pyoco-lab train` run, enough for find_runs (no weights)."""
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": dataclasses.asdict(config)}))
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"path": "step-0000001"}))
    return run


def test_find_runs_by_phase(tmp_path):
    from pyoco_lab.training import load_config

    video = _fake_run(tmp_path, "quick-video-progressive-a2", video_config())
    image = _fake_run(tmp_path, "quick-image", video_config(phase="image", noise="iid", alpha=0.0))
    _fake_run(tmp_path, "broken", video_config()).joinpath("config.json").write_text("{}")
    assert load_config(video).phase == "video"  # the layout is the real one
    assert ex.find_runs(tmp_path, phase="video") == [video]
    assert ex.find_runs(tmp_path, phase="image") == [image]
    assert ex.find_runs(tmp_path / "missing") == []


def test_generate_disabled_without_runs(tmp_path, monkeypatch):
    # with the lab's shipped image models, the inversion playground starts with them
    e = ex.Explorer(num_frames=4, runs_root=tmp_path)
    options = [value for _, value in e.inversion.run.options]
    # first the model whose held-out inversion met the Gaussianity targets (docs/pretrained.md)
    assert options[0] == "pretrained:lab-tiny-32" and "pretrained:lab-tiny-16-256k" in options
    assert not e.inversion.button.disabled
    # with no shipped model and no runs, both panels say what to train
    monkeypatch.setattr(pretrained, "registry", lambda directory=None: {})
    e = ex.Explorer(num_frames=4, runs_root=tmp_path)
    assert e.generate.button.disabled and e.generate.gallery_button.disabled
    assert "pyoco-lab train --preset quick" in e.generate.status.value
    assert e.inversion.button.disabled and "pyoco-lab train" in e.inversion.status.value


def _loader(phase="video"):
    config = video_config() if phase == "video" else video_config(phase="image", noise="iid", alpha=0.0)
    return lambda run: (gaussian_denoiser, config)


def test_generate_samples_at_the_chosen_prior(tmp_path):
    prior = ex.PriorExplorer("progressive", "inf", num_frames=4, seed=3)
    panel = ex.GeneratePanel(
        prior, [tmp_path], loader=_loader(), sampler="euler", num_steps=5, prior_source="slider"
    )
    video = panel.generate()
    assert video is not None, panel.status.value
    assert video.shape == (4, 3, 8, 8)  # the model's clip length and resolution
    # alpha = inf: identical starting noise in every frame, and the denoiser treats frames alike.
    assert torch.allclose(video[0], video[1]) and torch.allclose(video[0], video[3])
    assert panel.progress.value == panel.progress.max == 5
    assert "data:image/gif;base64" in panel.video.value and not panel.button.disabled

    prior.alpha_mode.value = "zero"
    iid = panel.generate()
    assert not torch.allclose(iid[0], iid[1])


def test_generate_preserves_the_prior_correlation_through_a_linear_denoiser(tmp_path):
    # With the Gaussian denoiser every sampler step is x -> c x, so the video's frame correlation
    # equals the starting noise's: the sample "preserves its own correlation".
    prior = ex.PriorExplorer("mixed", 1.0, num_frames=4, seed=0)
    panel = ex.GeneratePanel(
        prior, [tmp_path], loader=_loader(), sampler="heun", num_steps=4, prior_source="slider"
    )
    video = panel.generate()
    start = noise_lib.sample_noise("mixed", (1, 4, 3, 8, 8), 1.0, generator=torch.Generator().manual_seed(0))
    measured = noise_lib.empirical_frame_correlation(video[None])
    assert torch.allclose(measured, noise_lib.empirical_frame_correlation(start), atol=1e-5)


def test_gallery_one_video_per_alpha(tmp_path):
    prior = ex.PriorExplorer("progressive", 2.0, num_frames=4)
    panel = ex.GeneratePanel(
        prior, [tmp_path], loader=_loader(), sampler="euler", num_steps=2, gallery_alphas=(0, "inf")
    )
    videos = panel.generate_gallery()
    assert videos is not None and len(videos) == 2, panel.status.value
    assert panel.progress.value == panel.progress.max == 4
    assert "α = ∞" in panel.gallery.value


def _disk_loader(run):
    """The Gaussian denoiser with the run's own config.json (what load_denoiser would return)."""
    from pyoco_lab.training import load_config

    return gaussian_denoiser, load_config(run)


def _start_correlation(kind, alpha, seed=0):
    generator = torch.Generator().manual_seed(seed)
    start = noise_lib.sample_noise(kind, (1, 4, 3, 8, 8), alpha, generator=generator)
    return noise_lib.empirical_frame_correlation(start)


def test_generate_defaults_to_the_runs_own_training_prior(tmp_path):
    # Fig. 6 samples each model with the prior it was trained with: the run's config says progressive 2,
    # the slider says mixed inf; Generate must use the run's unless told otherwise, and say which.
    run = _fake_run(tmp_path, "quick-video-progressive-a2", video_config(noise="progressive", alpha=2.0))
    prior = ex.PriorExplorer("mixed", "inf", num_frames=4, seed=0)
    panel = ex.GeneratePanel(prior, [run], loader=_disk_loader, sampler="heun", num_steps=4)
    assert panel.prior_source.value == "run"
    assert "trained with: progressive, α = 2" in panel.run_prior.value
    assert panel.sampling_prior() == ("progressive", 2.0, "run")
    video = panel.generate()
    assert video is not None, panel.status.value
    # The linear denoiser keeps the starting noise's frame correlation: progressive 2, not frozen frames.
    measured = noise_lib.empirical_frame_correlation(video[None])
    assert torch.allclose(measured, _start_correlation("progressive", 2.0), atol=1e-5)
    assert "the run's own prior: progressive, α = 2, heun × 4" in html.unescape(panel.video.value)
    assert panel.label == "the run's own prior: progressive, α = 2, heun × 4"

    panel.prior_source.value = "slider"  # explicitly the slider's: a train/sample mismatch, labelled
    readout = html.unescape(panel.run_prior.value)
    assert "train/sample mismatch" in readout and "mixed, α = ∞" in readout
    frozen = panel.generate()
    assert torch.allclose(frozen[0], frozen[3])
    assert panel.label == "the slider's prior: mixed, α = ∞; trained with progressive, α = 2, heun × 4"


def test_gallery_spans_runs_trained_at_several_alphas_or_says_one_model(tmp_path):
    runs = [
        _fake_run(tmp_path, "video-iid", video_config(noise="iid", alpha=0.0)),
        _fake_run(tmp_path, "video-prog-1", video_config(noise="progressive", alpha=1.0)),
        _fake_run(tmp_path, "video-prog-10", video_config(noise="progressive", alpha=10.0)),
        _fake_run(tmp_path, "video-mixed-1", video_config(noise="mixed", alpha=1.0)),  # another kind
        _fake_run(tmp_path, "video-prog-2-16px", video_config(alpha=2.0, resolution=16)),  # another shape
    ]
    prior = ex.PriorExplorer("mixed", 0.5, num_frames=4, seed=0)
    panel = ex.GeneratePanel(
        prior, runs, loader=_disk_loader, sampler="euler", num_steps=2, gallery_alphas=(0, 2, "inf")
    )
    panel.run.value = str(runs[1])
    assert [a for a, _ in panel.gallery_runs()] == [0.0, 1.0, 10.0]
    videos = panel.generate_gallery()
    assert videos is not None and len(videos) == 3, panel.status.value
    assert panel.gallery_kind == ex.generate.MODELS_GALLERY
    assert "models trained at several α" in panel.gallery.value and "trained at α = 10" in panel.gallery.value
    expected = [("iid", 0.0), ("progressive", 1.0), ("progressive", 10.0)]
    for video, (kind, alpha) in zip(videos, expected, strict=True):
        measured = noise_lib.empirical_frame_correlation(video[None])
        assert torch.allclose(measured, _start_correlation(kind, alpha), atol=1e-3), (kind, alpha)

    panel.prior_source.value = "slider"  # one model, sampled at the gallery's alphas: said so
    videos = panel.generate_gallery()
    assert len(videos) == 3 and panel.gallery_kind == ex.generate.ONE_MODEL_GALLERY
    assert "one model, sampled at several α" in panel.gallery.value
    assert torch.allclose(videos[2][0], videos[2][3])  # the slider's kind (mixed) at alpha = inf
    # alpha = 0 is i.i.d. for every kind: the mixed run's Fig. 6 set is the i.i.d. run and itself.
    panel.prior_source.value = "run"
    panel.run.value = str(runs[3])
    assert [a for a, _ in panel.gallery_runs()] == [0.0, 1.0]
    # A run with no other alphas at its shape: the run's own prior kind, alpha varied on that one model.
    panel.run.value = str(runs[4])
    assert panel.gallery_runs() == []
    panel.generate_gallery()
    assert panel.gallery_kind == ex.generate.ONE_MODEL_GALLERY and "progressive prior" in panel.gallery.value


def test_a_zoo_model_that_records_a_sampling_prior_is_sampled_with_it_and_labelled_so(tmp_path, monkeypatch):
    """Issue #38: a shipped model may sample best with another prior than it was trained with; the explorer
    uses the recorded one by default, says so, and samples with the training prior one click away."""
    from pyoco_lab.noise import NoisePrior
    from pyoco_lab.training import pretrained

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(pretrained.WEIGHTS_DIR / pretrained.REGISTRY_FILE, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    pretrained.record_sampling("zoo-32-progressive-2", NoisePrior("progressive", 5.0), "a sweep")
    zoo = ["pretrained:zoo-32-iid", "pretrained:zoo-32-progressive-2"]
    small = lambda run: (gaussian_denoiser, pretrained.get(run).train_config)  # noqa: E731
    prior = ex.PriorExplorer("mixed", 1.0, num_frames=8, seed=0)
    panel = ex.GeneratePanel(prior, zoo, loader=small, sampler="euler", num_steps=2)
    panel.run.value = zoo[1]
    readout = html.unescape(panel.run_prior.value)
    assert "trained with: progressive, α = 2 — samples with its recorded prior: progressive, α = 5" in readout
    assert panel.use_training_prior.layout.display == "" and panel.sampling_prior() == (
        "progressive",
        5.0,
        "recorded",
    )
    assert panel.generate() is not None, panel.status.value
    recorded, trained = "progressive, α = 5", "progressive, α = 2"
    assert (
        panel.label == f"the model's recorded sampling prior: {recorded} (trained with {trained}), euler × 2"
    )
    videos = panel.generate_gallery()  # the i.i.d. model and this one, each with its own (recorded) prior
    assert videos is not None and len(videos) == 2, panel.status.value
    gallery = html.unescape(panel.gallery.value)
    assert "trained at α = 2, sampled at progressive, α = 5" in gallery and "progressive prior" in gallery
    assert "iid prior" not in gallery  # the gallery's kind is the selected model's, not its first row's
    panel.use_training_prior.value = True  # one click: the training prior
    assert panel.sampling_prior() == ("progressive", 2.0, "run")
    assert "untick to use that" in html.unescape(panel.run_prior.value)
    panel.use_training_prior.value = False
    panel.run.value = zoo[0]  # a model that records nothing: no box
    assert panel.use_training_prior.layout.display == "none" and panel.sampling_prior() == ("iid", 0.0, "run")


def test_generate_reports_errors_in_the_panel(tmp_path):
    def broken(run):
        raise FileNotFoundError(f"run {run} has no checkpoint yet")

    panel = ex.GeneratePanel(ex.PriorExplorer(num_frames=4), [tmp_path], loader=broken)
    assert panel.generate() is None
    assert "FileNotFoundError" in panel.status.value and not panel.button.disabled


def test_inversion_of_a_clip_matches_its_frame_similarity(tmp_path):
    # The Gaussian denoiser's inverse ODE only rescales x, so the inverted noise maps have exactly
    # the cosine similarities of the clip's frames.
    generator = torch.Generator().manual_seed(0)
    clips = [{"video": noise_lib.sample_noise("progressive", (1, 4, 3, 8, 8), 2.0, generator=generator)[0]}]
    panel = ex.InversionPanel([tmp_path], dataset=clips, loader=_loader("image"), num_steps=8)
    result = panel.invert()
    assert result is not None, panel.status.value
    assert result["noise"].shape == (4, 3, 8, 8)
    assert torch.allclose(result["similarity"], cosine_similarity_matrix(clips[0]["video"]), atol=1e-5)
    assert set(result["matrices"]) == {"inverted noise", "mixed α=1", "progressive α=2"}
    assert result["fitted_alpha"]["progressive"] > 0.5  # a strongly correlated clip
    assert (panel.progress.value, panel.progress.max) == (7, 7)  # moved per ODE step: 8 levels, 7 steps
    panel.clip.value = 5
    assert panel.invert() is None and "clip # must be in [0, 0]" in panel.status.value


# ----------------------------------------------------------------------------------------------
# the notebook


def test_notebook_is_clean_and_parameterised():
    import nbformat
    import papermill

    path = REPO / "notebooks" / "00_explorer.ipynb"
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
    )
    params = papermill.inspect_notebook(str(path))
    assert {"kind", "alpha", "num_frames", "seed", "runs_root", "sampler", "num_steps", "output_dir"} <= set(
        params
    )


def test_notebook_runs_headless_and_leaves_static_figures(tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("PYOCO_RUNS", str(tmp_path / "no-runs"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout
    out = tmp_path / "figures"
    papermill.execute_notebook(
        str(REPO / "notebooks" / "00_explorer.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={"kind": "mixed", "alpha": "inf", "num_frames": 6, "output_dir": str(out)},
        cwd=str(tmp_path),
        progress_bar=False,
        kernel_name="python3",
    )
    for name in ("prior_correlation.png", "alpha_sweep.png", "noise_video.gif"):
        assert (out / name).stat().st_size > 1000, name


@pytest.mark.slow
def test_mark_cuts_says_which_frames_of_a_clip_open_another_scene(monkeypatch):
    """Issue #38 in the explorer: with "mark cuts" a generated clip's caption says whether it keeps one scene
    (scene consistency against real clips' cut threshold), checked on real clips and a real splice."""
    from pyoco_lab.data import EmbeddedVideoDataset

    data = EmbeddedVideoDataset(None, 16, "train", build_if_missing=True)
    first = data[0]
    other = next(data[i] for i in range(len(data)) if data[i]["video_id"] != first["video_id"])
    clip, elsewhere = first["video"][:8], other["video"][:8]
    spliced = torch.cat([clip[:3], elsewhere[3:]])  # frames 3-7 from another scene
    panel = ex.GeneratePanel(ex.PriorExplorer(num_frames=8), [], sampler="euler", num_steps=2)
    assert panel._scene_note(clip) == ""  # off by default: no real clips measured
    panel.mark_cuts.value = True
    assert panel._scene_note(clip) == " — holds one scene"
    assert panel._scene_note(spliced) == " — cuts at frame 3"
    assert list(panel._scene_judges) == [(16, 8)]  # the threshold measured once per clip shape
    monkeypatch.setattr(panel, "_sample", lambda *args, **kwargs: spliced)
    monkeypatch.setattr(panel, "sampling_prior", lambda: ("progressive", 2.0, "slider"))
    assert panel.generate() is not None, panel.status.value
    assert panel.label.endswith(" — cuts at frame 3")
    assert "cuts at frame 3" in html.unescape(panel.video.value)


# ----------------------------------------------------------------------------------------------
# zoo view and the video cache (issue #43)


def _zoo_with_a_recorded_prior(tmp_path, monkeypatch) -> list[str]:
    from pyoco_lab.noise import NoisePrior

    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(pretrained.WEIGHTS_DIR / pretrained.REGISTRY_FILE, weights)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", weights)
    pretrained.record_sampling("zoo-32-progressive-2", NoisePrior("progressive", 5.0), "a sweep")
    return ["pretrained:zoo-32-iid", "pretrained:zoo-32-mixed-1", "pretrained:zoo-32-progressive-2"]


class _CountingLoader:
    """The Gaussian denoiser with each model's registry config; counts loads and denoiser calls."""

    def __init__(self):
        self.loads, self.calls = 0, 0

    def __call__(self, run):
        self.loads += 1

        def denoiser(x, sigma, **cond):
            self.calls += 1
            return gaussian_denoiser(x, sigma)

        config = dataclasses.replace(pretrained.get(run).train_config, resolution=8, num_frames=4)
        return denoiser, config


def test_the_zoo_shows_every_model_in_rows_labelled_with_what_each_was_trained_and_sampled_with(
    tmp_path, monkeypatch
):
    zoo = _zoo_with_a_recorded_prior(tmp_path, monkeypatch)
    monkeypatch.setattr(ex.zoo, "cached_video", _small_cached_video(ex.zoo.cached_video))
    loader = _CountingLoader()
    empty = ex.ZooPanel(
        ex.PriorExplorer(), zoo, loader=loader, cache=ex.VideoCache(tmp_path / "new", shipped=None)
    )
    assert (
        empty.grid.value == "" and "Show the zoo" in empty.status.value and loader.loads == 0
    )  # nothing sampled
    prior = ex.PriorExplorer("mixed", 3.0, num_frames=4, seed=0)
    panel = ex.ZooPanel(prior, zoo, loader=loader, cache=ex.VideoCache(tmp_path / "videos"), sampler="euler",
                        num_steps=2, seeds=(0, 1))  # fmt: skip
    videos = panel.show()
    assert videos is not None, panel.status.value
    assert list(videos) == zoo and all(len(v) == 2 for v in videos.values())
    assert panel.row_labels == [
        "zoo-32-iid: trained and sampled with i.i.d.",
        "zoo-32-mixed-1: trained and sampled with mixed, α = 1",
        "zoo-32-progressive-2: trained with progressive, α = 2; sampled with progressive, α = 5",
    ]
    grid = html.unescape(panel.grid.value)
    assert grid.count("data:image/gif;base64") == 1  # one GIF: every clip loops in sync
    assert all(label in grid for label in panel.row_labels) and "seed 0" in grid and "seed 1" in grid
    assert panel.progress.value == panel.progress.max == 6
    # each model's training prior: the recorded one is one click away
    panel.sample_with.value = "training"
    assert panel.rows()[2][2] == ("progressive", 2.0)
    # one prior for all: the noise-prior tab's, a mismatch for every row but its own
    panel.sample_with.value = "slider"
    assert {sampled for _, _, sampled in panel.rows()} == {("mixed", 3.0)}
    assert panel.row_label(*panel.rows()[1]) == (
        "zoo-32-mixed-1: trained with mixed, α = 1; sampled with mixed, α = 3"
    )


def _small_cached_video(real):
    """cached_video at the loader's small clip shape (8 px, 4 frames), not the registry's 32 px."""

    def small(cache, model, load, config, *args, **kwargs):
        return real(
            cache, model, load, dataclasses.replace(config, resolution=8, num_frames=4), *args, **kwargs
        )

    return small


def test_a_setting_seen_before_comes_from_the_disk_cache_without_sampling(tmp_path, monkeypatch):
    zoo = _zoo_with_a_recorded_prior(tmp_path, monkeypatch)
    monkeypatch.setattr(ex.zoo, "cached_video", _small_cached_video(ex.zoo.cached_video))
    monkeypatch.setattr(ex.generate, "cached_video", _small_cached_video(ex.generate.cached_video))
    cache = ex.VideoCache(tmp_path / "videos")
    prior = ex.PriorExplorer("mixed", 1.0, num_frames=4, seed=0)
    first = _CountingLoader()
    panel = ex.ZooPanel(prior, zoo[:2], loader=first, cache=cache, sampler="euler", num_steps=2, seeds=(0,))
    shown = panel.show()
    assert first.loads == 2 and first.calls > 0 and "0 of 2 clips from the cache" in panel.status.value
    # a new session (a new panel, a new loader): nothing is loaded or sampled, the same clips come back
    again = _CountingLoader()
    panel = ex.ZooPanel(prior, zoo[:2], loader=again, cache=cache, sampler="euler", num_steps=2, seeds=(0,))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(shown.values(), panel.show().values(), strict=True))
    assert again.loads == again.calls == 0 and "2 of 2 clips from the cache" in panel.status.value
    # Generate reads the same cache: the i.i.d. model, seed 0, euler x 2 was sampled by the zoo
    generate = ex.GeneratePanel(prior, zoo[:2], loader=again, sampler="euler", num_steps=2, cache=cache)
    generate.run.value = zoo[0]
    assert torch.equal(generate.generate(), shown[zoo[0]][0]) and generate.from_cache
    assert again.calls == 0 and "(from the cache)" in generate.status.value
    panel.num_steps.value = 3  # another setting: sampled
    panel.show()
    assert again.calls > 0
    # a damaged cache file is sampled again, never shown
    for path in (tmp_path / "videos").glob("*.pt"):
        path.write_bytes(b"not a tensor")
    assert ex.VideoCache(tmp_path / "videos").get(path.stem) is None


def test_the_explorer_has_a_zoo_tab_and_keeps_videos_under_the_runs_root(tmp_path):
    e = ex.Explorer(runs_root=tmp_path, loader=_loader())
    assert [title for title, _ in e.tabs] == ["noise prior", "generate", "zoo", "inversion playground"]
    assert e.zoo.cache.directory == tmp_path / "explorer" / "videos" == e.generate.cache.directory
    assert ex.Explorer(runs_root=tmp_path, video_cache=None).zoo.cache.directory is None


# ----------------------------------------------------------------------------------------------
# The zoo videos shipped beside the weights: a fresh clone's zoo tab shows them before any sampling


def _refuse_to_load(run):
    raise AssertionError(f"{run} was loaded: the shipped zoo videos should have answered")


def test_a_fresh_clones_zoo_tab_shows_the_shipped_videos_without_loading_a_model(tmp_path):
    # The committed pyoco_lab/weights/zoo-videos cover the explorer's default zoo view (every current
    # shipped video model at its recorded prior, DEIS 6, seeds 0-2): `pyoco-lab pretrained zoo-videos`.
    e = ex.Explorer(runs_root=tmp_path, loader=_refuse_to_load)
    # shown as soon as the explorer is made (a fresh Run All), before any button is pressed
    assert e.zoo.grid.value.count("data:image/gif;base64") == 1, e.zoo.status.value
    videos = e.zoo.show()
    assert videos is not None, e.zoo.status.value
    count = len(e.zoo.models) * 3
    assert count >= 15 and f"{count} of {count} clips from the cache" in e.zoo.status.value
    clip = next(iter(videos.values()))[0]
    assert clip.dtype == torch.float32 and clip.shape == (8, 3, 32, 32) and torch.isfinite(clip).all()
    assert clip.std() > 0.05  # a sampled picture, not a constant
    assert not (tmp_path / "explorer" / "videos").exists()  # nothing written: nothing was sampled


def test_shipping_zoo_videos_samples_each_model_once_and_the_users_cache_wins(tmp_path):
    shipped = tmp_path / "shipped"
    written, kept = ex.ship_zoo_videos(shipped, seeds=(5,))
    models = [pretrained.PREFIX + m.name for m in pretrained.current_models(phase="video")]
    assert (written, kept) == (len(models), 0) and len(list(shipped.glob("*.pt"))) == len(models)
    stored = torch.load(next(shipped.glob("*.pt")), weights_only=True)
    assert stored.dtype == torch.float16  # half the bytes in the repository
    assert ex.ship_zoo_videos(shipped, seeds=(5,)) == (0, len(models))  # kept, never sampled again
    panel = ex.ZooPanel(
        ex.PriorExplorer(),
        models,
        loader=_refuse_to_load,
        cache=ex.VideoCache(None, shipped=shipped),
        seeds=(5,),
    )
    shown = panel.show()
    assert shown is not None and f"{len(models)} of {len(models)} clips from the cache" in panel.status.value
    # the user's own cache is read first; a missing shipped folder is no error
    key = next(shipped.glob("*.pt")).stem
    mine = ex.VideoCache(tmp_path / "mine", shipped=shipped)
    mine.put(key, torch.zeros(8, 3, 32, 32))
    assert torch.equal(mine.get(key), torch.zeros(8, 3, 32, 32))
    assert ex.VideoCache(tmp_path / "mine", shipped=tmp_path / "absent").get("no-such-key") is None
