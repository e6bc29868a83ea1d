"""The interactive explorer: move alpha, watch the noise prior, its correlation and its samples.

Three panels, each a small class owning its ipywidgets and their ``observe`` handlers, so the
figures update live as controls move, without re-running cells:

- :class:`PriorExplorer` -- prior kind, alpha, frames, seed -> closed-form vs empirical frame
  correlation (plotly heatmaps), correlation vs frame distance, and the noise "video" itself.
- :class:`GeneratePanel` -- with a trained checkpoint (found under ``runs/``), sample a video at
  the explorer's prior with a chosen sampler and step count, and a gallery over several alphas
  that loops in sync.
- :class:`InversionPanel` -- invert a real clip with the image model (eq. 2 integrated upwards)
  and compare the cosine similarity of its noise maps with what the priors predict (Fig. 2).

Alpha lives in [0, inf] (Section 4: 0 is i.i.d. noise, inf identical frames). A log slider cannot
reach either end, so alpha is a ``FloatLogSlider`` over [0.01, 100] plus a three-way toggle
"0 / slider / inf"; moving the slider switches the toggle back to "slider".

The computations are plain functions (:func:`prior_matrices`, :func:`generate_video`,
:func:`invert_clip`) so the notebook's static, papermill-friendly figures use the same code.
"""

from __future__ import annotations

import functools
import html
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from pyoco_lab import noise as noise_lib
from pyoco_lab.viz.figures import correlation_figure_plotly, cosine_similarity_matrix, mean_by_distance
from pyoco_lab.viz.video import gif_bytes, video_grid, video_html

ALPHA_LOG_RANGE = (-2.0, 2.0)  # exponents of the log slider: alpha in [0.01, 100]
ALPHA_MODES = (("α = 0 (i.i.d.)", "zero"), ("slider", "slider"), ("α = ∞ (frozen)", "inf"))
SAMPLER_CHOICES = ("heun", "euler", "deis", "rk3", "stochastic")
NOISE_RANGE = (-3.0, 3.0)  # unit-variance noise shown over +-3 std
TRAIN_HINT = "pyoco-lab train --preset quick"


def parse_alpha(value) -> float:
    """alpha from a number or the strings "inf"/"∞" (papermill parameters must be literals)."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "∞", "infinity"):
        return math.inf
    return noise_lib.validate_alpha(value)


def format_alpha(alpha: float) -> str:
    return "∞" if math.isinf(alpha) else f"{alpha:.3g}"


# ----------------------------------------------------------------------------------------------
# Computations (no widgets)


def prior_matrices(
    kind: str,
    alpha: float,
    num_frames: int,
    seed: int = 0,
    *,
    batch: int = 4,
    channels: int = 3,
    resolution: int = 32,
) -> dict:
    """Closed-form and empirical frame correlation of a prior, plus one noise video (F, C, H, W).

    The empirical matrix pools batch, channels and pixels (``batch * channels * resolution²``
    values per frame), so with the defaults its entries are within ~0.02 of the closed form.
    """
    alpha = parse_alpha(alpha)
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 to show correlation between frames, got {num_frames}")
    generator = torch.Generator().manual_seed(int(seed))
    sample = noise_lib.sample_noise(
        kind, (batch, num_frames, channels, resolution, resolution), alpha, generator=generator
    )
    closed = noise_lib.frame_correlation(kind, num_frames, alpha)
    empirical = noise_lib.empirical_frame_correlation(sample)
    return {"closed": closed, "empirical": empirical, "noise": sample[0]}


def prior_figure(kind: str, alpha: float | str, num_frames: int, seed: int = 0):
    """Static (matplotlib) twin of the live prior view: (figure, :func:`prior_matrices` result)."""
    from pyoco_lab.viz.figures import correlation_figure

    result = prior_matrices(kind, alpha, num_frames, seed)
    title = (
        f"{kind} prior, α = {format_alpha(parse_alpha(alpha))}, {num_frames} frames (empirical: seed {seed})"
    )
    figure = correlation_figure(
        {"closed form": result["closed"], "empirical": result["empirical"]}, title=title
    )
    return figure, result


def alpha_sweep_figure(alphas: Sequence[float | str], num_frames: int = 16):
    """Closed-form correlation vs frame distance for several alphas, mixed (eq. 3) and progressive (eq. 4)."""
    import matplotlib.pyplot as plt

    from pyoco_lab.viz.figures import plot_distance_curves

    alphas = [parse_alpha(a) for a in alphas]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained", sharey=True)
    for ax, kind in zip(axes, ("mixed", "progressive"), strict=True):
        curves = {
            f"α = {format_alpha(a)}": noise_lib.correlation_by_distance(kind, num_frames, a) for a in alphas
        }
        plot_distance_curves(curves, ax=ax)
        ax.set_title(f"{kind} prior", fontsize=10)
    return figure


def default_runs_root() -> Path:
    """Where runs are looked for: :func:`pyoco_lab.train.default_runs_root` ($PYOCO_RUNS, else repo runs/)."""
    from pyoco_lab.train import default_runs_root as train_runs_root

    return train_runs_root()


def load_clips(resolution: int, num_frames: int, split: str = "test"):
    """Real clips for the inversion playground (the embedded dataset), or None with a printed hint."""
    from pyoco_lab.data import EmbeddedVideoDataset

    try:
        return EmbeddedVideoDataset(resolution=resolution, split=split, num_frames=num_frames)
    except (FileNotFoundError, ValueError) as error:
        print(f"inversion playground: no clips ({error})")
        return None


def find_runs(root: str | Path = "runs", *, phase: str | None = None) -> list[Path]:
    """Finished-or-checkpointed runs of ``pyoco-lab train`` under ``root``, "quick" ones first, then newest.

    A run is a folder with ``config.json`` and ``checkpoints/latest.json`` (the layout of
    :mod:`pyoco_lab.train`); ``phase`` ("image" or "video") keeps runs of that training phase.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for pointer in root.rglob("checkpoints/latest.json"):
        run = pointer.parent.parent
        if not (run / "config.json").is_file():
            continue
        if phase is not None and _run_config(run).get("phase") != phase:
            continue
        runs.append(run)
    return sorted(
        runs, key=lambda r: ("quick" not in r.name, -(r / "checkpoints" / "latest.json").stat().st_mtime)
    )


def _run_config(run: Path) -> dict:
    """The TrainConfig of a run as a dict ({} if unreadable: such a run is simply not offered)."""
    from pyoco_lab.train import load_config

    try:
        config = load_config(run)
    except (ValueError, FileNotFoundError, KeyError, TypeError):
        return {}
    return config.__dict__ if hasattr(config, "__dict__") else dict(config)


def model_video_shape(config, num_frames: int | None = None) -> tuple[int, int, int, int]:
    """(frames, channels, height, width) a trained model generates, read from its TrainConfig."""
    get = config.get if isinstance(config, dict) else lambda name, default: getattr(config, name, default)
    resolution = int(get("resolution", 32))
    channels = int(get("channels", 3))
    frames = int(num_frames or get("num_frames", 16))
    return frames, channels, resolution, resolution


def generate_video(
    denoiser: Callable,
    kind: str,
    alpha: float,
    shape: Sequence[int],
    *,
    seed: int = 0,
    sampler: str = "heun",
    num_steps: int = 18,
    class_label: int | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Sample one video (F, C, H, W) from ``denoiser`` starting at noise from the prior (kind, alpha).

    The *starting* noise follows the prior (the paper samples with the prior it trained with);
    the stochastic sampler's churn noise follows it as well.
    """
    from pyoco_lab import edm

    prior = noise_lib.NoisePrior(kind, parse_alpha(alpha))
    generator = torch.Generator().manual_seed(int(seed))
    start = prior.sample((1, *shape), generator=generator)
    model = denoiser
    if class_label is not None:
        model = functools.partial(denoiser, class_labels=torch.tensor([int(class_label)]))
    options = {"callback": callback}
    if sampler == "stochastic":
        # EDM's churn for ImageNet-64 (S_churn = 40); the fresh noise follows the same prior.
        options |= {"s_churn": 40.0, "noise_sampler": edm.prior_noise_sampler(prior, generator)}
    return edm.sample(model, start, sampler=sampler, num_steps=num_steps, **options)[0]


def invert_clip(
    image_denoiser: Callable, clip: torch.Tensor, *, num_steps: int = 32, solver: str = "heun"
) -> torch.Tensor:
    """Noise maps (F, C, H, W) of a real clip (F, C, H, W), each frame inverted by the *image* model.

    Frames are inverted independently (``frames_as_batch``), so any correlation between the noise
    maps comes from the data, not from the model -- the observation behind PYoCo (Fig. 2).
    """
    from pyoco_lab import edm

    return edm.invert(image_denoiser, clip[None], num_steps=num_steps, solver=solver, frames_as_batch=True)[0]


# ----------------------------------------------------------------------------------------------
# Widgets


def _state_html(state: dict, text: str) -> str:
    """Readable summary plus the state as JSON in a data attribute (read by the browser test)."""
    payload = html.escape(json.dumps(state), quote=True)
    return f'<span class="pyoco-state" data-state="{payload}">{html.escape(text)}</span>'


class PriorExplorer:
    """Live view of a noise prior; ``display(explorer.widget)`` in a notebook.

    ``state`` (a dict, mirrored as JSON into the ``readout`` widget) holds the current kind,
    alpha, frames, seed and the adjacent-frame correlation (closed form and empirical).
    """

    def __init__(
        self,
        kind: str = "progressive",
        alpha: float | str = 2.0,
        num_frames: int = 16,
        seed: int = 0,
        *,
        batch: int = 4,
        resolution: int = 32,
        fps: float = 8.0,
        scale: int = 4,
    ):
        import ipywidgets as w
        import plotly.graph_objects as go

        noise_lib.validate_kind(kind)
        alpha = parse_alpha(alpha)
        self.batch, self.resolution, self.fps, self.scale = batch, resolution, fps, scale
        self.listeners: list[Callable[[dict], None]] = []
        self.kind = w.ToggleButtons(options=noise_lib.KINDS, value=kind, description="prior")
        low, high = ALPHA_LOG_RANGE
        finite = min(max(alpha, 10**low), 10**high) if 0 < alpha < math.inf else 1.0
        self.alpha_slider = w.FloatLogSlider(
            value=finite, base=10, min=low, max=high, step=0.001, description="alpha", readout_format=".3g"
        )
        mode = "zero" if alpha == 0 else "inf" if math.isinf(alpha) else "slider"
        self.alpha_mode = w.ToggleButtons(options=ALPHA_MODES, value=mode, description="alpha end")
        self.num_frames = w.IntSlider(value=num_frames, min=2, max=32, description="frames")
        self.seed = w.IntText(value=seed, description="seed", layout=w.Layout(width="160px"))
        self.readout = w.HTML()
        self.readout.add_class("pyoco-readout")
        self.noise_video = w.Image(format="gif", layout=w.Layout(width=f"{resolution * scale}px"))
        self.noise_video.add_class("pyoco-noise-video")
        first = prior_matrices(kind, alpha, num_frames, seed, batch=batch, resolution=resolution)
        self.figure = go.FigureWidget(self._figure(first))
        self.state: dict = {}
        self._show(first)

        self.alpha_slider.observe(self._on_slider, names="value")
        for control in (self.kind, self.alpha_mode, self.num_frames, self.seed):
            control.observe(self.update, names="value")
        video_box = w.VBox([w.HTML("<b>noise video</b> (sample 0, ±3σ)"), self.noise_video])
        self.widget = w.VBox(
            [
                w.HBox([self.kind, self.seed]),
                w.HBox([self.alpha_slider, self.alpha_mode]),
                self.num_frames,
                self.readout,
                w.HBox([self.figure, video_box]),
            ]
        )

    @property
    def alpha(self) -> float:
        mode = self.alpha_mode.value
        return 0.0 if mode == "zero" else math.inf if mode == "inf" else float(self.alpha_slider.value)

    def _on_slider(self, change) -> None:
        # Moving the slider means "use this finite alpha": leave the 0/inf end if one was chosen
        # (that change itself triggers update, so do not update twice).
        if self.alpha_mode.value != "slider":
            self.alpha_mode.value = "slider"
        else:
            self.update()

    def _figure(self, result: dict):
        closed = result["closed"]
        curves = {
            "closed form": mean_by_distance(closed),
            "empirical": mean_by_distance(result["empirical"]),
        }
        fig = correlation_figure_plotly({"closed form": closed, "empirical": result["empirical"]}, curves)
        fig.update_layout(width=760)
        return fig

    def update(self, change=None) -> dict:
        """Recompute for the current controls and refresh every view; returns the new state."""
        result = prior_matrices(
            self.kind.value,
            self.alpha,
            self.num_frames.value,
            self.seed.value,
            batch=self.batch,
            resolution=self.resolution,
        )
        self._show(result)
        return self.state

    def _show(self, result: dict) -> None:
        closed, empirical = result["closed"], result["empirical"]
        frames = closed.shape[0]
        with self.figure.batch_update():
            self.figure.data[0].z = closed.numpy()
            self.figure.data[1].z = empirical.numpy()
            for trace, matrix in zip(self.figure.data[2:4], (closed, empirical), strict=True):
                trace.x = list(range(frames))
                trace.y = mean_by_distance(matrix)
        self.noise_video.value = gif_bytes(result["noise"], fps=self.fps, value_range=NOISE_RANGE)
        alpha = self.alpha
        self.state = {
            "kind": self.kind.value,
            "alpha": "inf" if math.isinf(alpha) else alpha,
            "num_frames": frames,
            "seed": int(self.seed.value),
            "adjacent_closed": round(float(closed[0, 1]), 6),
            "adjacent_empirical": round(float(empirical[0, 1]), 6),
            "updated": time.time(),
        }
        text = (
            f"{self.kind.value}, α = {format_alpha(alpha)}, {frames} frames: corr(frame i, i+1) = "
            f"{float(closed[0, 1]):.3f} closed form, {float(empirical[0, 1]):.3f} measured"
        )
        self.readout.value = _state_html(self.state, text)
        for listener in self.listeners:
            listener(self.state)


class _ModelPanel:
    """Shared plumbing: pick a run, load its EMA denoiser once, report status, disable if none."""

    def __init__(self, runs: Sequence[Path], loader: Callable | None, none_message: str):
        import ipywidgets as w

        self.loader = loader
        self._cache: dict = {}
        options = [(str(r), str(r)) for r in runs]
        self.run = w.Dropdown(options=options or [("(no trained run found)", "")], description="run")
        self.run.layout.width = "520px"
        self.status = w.HTML()
        self.progress = w.IntProgress(value=0, min=0, max=1, description="progress")
        self.available = bool(runs)
        if not self.available:
            self.status.value = f'<span style="color:#a33">{html.escape(none_message)}</span>'

    def load(self):
        run = self.run.value
        if run not in self._cache:
            loader = self.loader
            if loader is None:
                from pyoco_lab.train import load_denoiser as loader
            denoiser, config = loader(run)
            if isinstance(denoiser, torch.nn.Module):
                denoiser.eval()
            self._cache[run] = (denoiser, config)
        return self._cache[run]

    def _progress_callback(self, total: int, offset: int = 0):
        self.progress.max = max(total, 1)

        def step(i, x):
            self.progress.value = offset + i + 1

        return step

    def _fail(self, error: Exception) -> None:
        self.status.value = (
            f'<span style="color:#a33">{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>'
        )


class GeneratePanel(_ModelPanel):
    """Generate button (one video at the explorer's prior) and a synced gallery over alphas."""

    def __init__(
        self,
        explorer: PriorExplorer,
        runs: Sequence[Path] = (),
        *,
        loader: Callable | None = None,
        sampler: str = "heun",
        num_steps: int = 18,
        gallery_alphas: Sequence[float | str] = (0.0, 0.5, 2.0, 10.0, "inf"),
        scale: int = 4,
    ):
        import ipywidgets as w

        message = f"No trained video checkpoint found. Train one first: {TRAIN_HINT} (then re-run this cell)."
        super().__init__(runs, loader, message)
        if sampler not in SAMPLER_CHOICES:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLER_CHOICES)}")
        self.explorer = explorer
        if isinstance(gallery_alphas, str):
            raise ValueError(
                f"gallery_alphas must be a list of alphas, got the string {gallery_alphas!r}; "
                "with papermill pass it as YAML: -y 'gallery_alphas: [0, 2, inf]' or -p with a list"
            )
        self.gallery_alphas = [parse_alpha(a) for a in gallery_alphas]
        self.scale = scale
        self.sampler = w.Dropdown(options=SAMPLER_CHOICES, value=sampler, description="sampler")
        self.num_steps = w.IntSlider(value=num_steps, min=2, max=64, description="steps")
        self.class_label = w.IntText(value=0, description="class", layout=w.Layout(width="160px"))
        self.class_label.tooltip = "class label, used only by class-conditional runs"
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.gallery_button = w.Button(description="Gallery over alphas", icon="th")
        self.video = w.HTML()
        self.video.add_class("pyoco-generated")
        self.gallery = w.HTML()
        for b in (self.button, self.gallery_button):
            b.disabled = not self.available
        self.button.on_click(lambda _: self.generate())
        self.gallery_button.on_click(lambda _: self.generate_gallery())
        self.widget = w.VBox(
            [
                self.run,
                w.HBox([self.sampler, self.num_steps, self.class_label]),
                w.HBox([self.button, self.gallery_button, self.progress]),
                self.status,
                self.video,
                self.gallery,
            ]
        )

    def _sample(self, alpha: float, callback) -> torch.Tensor:
        denoiser, config = self.load()
        e = self.explorer
        # The model's own clip length: the video U-Net was trained on that many frames.
        shape = model_video_shape(config)
        conditional = bool(getattr(config, "class_conditional", False))
        return generate_video(
            denoiser,
            e.kind.value,
            alpha,
            shape,
            seed=e.seed.value,
            sampler=self.sampler.value,
            num_steps=self.num_steps.value,
            class_label=self.class_label.value if conditional else None,
            callback=callback,
        )

    def generate(self) -> torch.Tensor | None:
        """Sample one video at the explorer's current prior and show it; returns it (F, C, H, W)."""
        e = self.explorer
        label = f"{e.kind.value}, α = {format_alpha(e.alpha)}, {self.sampler.value} × {self.num_steps.value}"
        self.button.disabled = True
        self.status.value = f"sampling {html.escape(label)} ..."
        try:
            start = time.perf_counter()
            video = self._sample(e.alpha, self._progress_callback(self.num_steps.value))
            self.video.value = video_html(video, fps=e.fps, scale=self.scale, caption=label)
            self.status.value = f"done in {time.perf_counter() - start:.1f} s"
            return video
        except Exception as error:  # shown in the panel: a notebook user needs the message, not a dead button
            self._fail(error)
            return None
        finally:
            self.button.disabled = not self.available

    def generate_gallery(self) -> list[torch.Tensor] | None:
        """One video per alpha in ``gallery_alphas`` (same seed), tiled so they loop in sync."""
        e = self.explorer
        steps, videos = self.num_steps.value, []
        self.gallery_button.disabled = True
        try:
            start = time.perf_counter()
            for k, alpha in enumerate(self.gallery_alphas):
                self.status.value = f"gallery: α = {format_alpha(alpha)} ({k + 1}/{len(self.gallery_alphas)})"
                self.progress.max = steps * len(self.gallery_alphas)
                callback = self._progress_callback(steps * len(self.gallery_alphas), offset=k * steps)
                videos.append(self._sample(alpha, callback))
            labels = [f"α = {format_alpha(a)}" for a in self.gallery_alphas]
            title = f"{e.kind.value} prior, seed {e.seed.value}, {self.sampler.value} × {steps}"
            self.gallery.value = video_grid(videos, labels, fps=e.fps, scale=self.scale, title=title)
            self.status.value = f"gallery done in {time.perf_counter() - start:.1f} s"
            return videos
        except Exception as error:
            self._fail(error)
            return None
        finally:
            self.gallery_button.disabled = not self.available


class InversionPanel(_ModelPanel):
    """Invert a real clip with the image model; compare its noise correlation with the priors."""

    def __init__(
        self,
        runs: Sequence[Path] = (),
        *,
        dataset=None,
        loader: Callable | None = None,
        num_steps: int = 32,
        priors: Sequence[tuple[str, float]] = (("mixed", 1.0), ("progressive", 2.0)),
        scale: int = 4,
    ):
        import ipywidgets as w

        message = (
            "No trained image model found (inversion needs the image model of a run). "
            f"Train one first: {TRAIN_HINT} (then re-run this cell)."
        )
        super().__init__(runs, loader, message)
        self.dataset = dataset
        self.priors = [(k, parse_alpha(a)) for k, a in priors]
        self.scale = scale
        self.clip = w.BoundedIntText(value=0, min=0, max=10**6, description="clip #")
        self.num_steps = w.IntSlider(value=num_steps, min=4, max=128, description="ODE steps")
        self.button = w.Button(description="Invert clip", icon="undo")
        self.button.disabled = not self.available
        self.views = w.HTML()
        self.figure = w.Output()
        self.result: dict = {}
        self.button.on_click(lambda _: self.invert())
        self.widget = w.VBox(
            [
                self.run,
                w.HBox([self.clip, self.num_steps, self.button, self.progress]),
                self.status,
                self.views,
                self.figure,
            ]
        )

    def invert(self) -> dict | None:
        """Invert the chosen clip; returns {"clip", "noise", "similarity", "fitted_alpha"}."""
        self.button.disabled = True
        try:
            denoiser, config = self.load()
            if self.dataset is None:  # test clips at the model's resolution and clip length
                frames = model_video_shape(config)[0]
                self.dataset = load_clips(model_video_shape(config)[2], frames)
                if self.dataset is None:
                    raise FileNotFoundError(
                        "no clips: build the embedded dataset with `pyoco-lab data build`"
                    )
            if not 0 <= self.clip.value < len(self.dataset):
                raise ValueError(f"clip # must be in [0, {len(self.dataset) - 1}], got {self.clip.value}")
            item = self.dataset[self.clip.value]
            clip = item["video"] if isinstance(item, dict) else item
            self.status.value = f"inverting clip {self.clip.value} ({clip.shape[0]} frames) ..."
            self.progress.max, self.progress.value = 1, 0
            noise = invert_clip(denoiser, clip, num_steps=self.num_steps.value)
            self.progress.value = 1
            self.result = inversion_summary(clip, noise, self.priors)
            self._render()
            return self.result
        except Exception as error:
            self._fail(error)
            return None
        finally:
            self.button.disabled = not self.available

    def _render(self) -> None:
        from IPython.display import display

        r = self.result
        clip_html = video_html(r["clip"], scale=self.scale, caption="real clip")
        noise_html = video_html(
            r["noise"], scale=self.scale, caption="inverted noise (±3σ)", value_range=NOISE_RANGE
        )
        fits = ", ".join(f"{k}: α ≈ {format_alpha(a)}" for k, a in r["fitted_alpha"].items())
        self.views.value = (
            f'<div style="display:flex;gap:16px">{clip_html}{noise_html}</div><div>best-fit {fits}</div>'
        )
        self.figure.clear_output(wait=True)
        with self.figure:
            display(
                correlation_figure_plotly(
                    r["matrices"], title="cosine similarity of inverted noise vs priors"
                )
            )
        self.status.value = "done"


def inversion_summary(clip: torch.Tensor, noise: torch.Tensor, priors: Sequence[tuple[str, float]]) -> dict:
    """Cosine similarity of inverted noise maps next to the priors' closed forms, plus best-fit alphas."""
    similarity = cosine_similarity_matrix(noise)
    frames = similarity.shape[0]
    matrices = {"inverted noise": similarity}
    for kind, alpha in priors:
        matrices[f"{kind} α={format_alpha(alpha)}"] = noise_lib.frame_correlation(kind, frames, alpha)
    curve = mean_by_distance(similarity)
    distances = list(range(1, frames))
    fitted = {
        kind: noise_lib.fit_alpha(kind, distances, curve[1:].tolist()) for kind in ("mixed", "progressive")
    }
    return {
        "clip": clip,
        "noise": noise,
        "similarity": similarity,
        "matrices": matrices,
        "fitted_alpha": fitted,
    }


class Explorer:
    """All panels in tabs: ``display(Explorer(...).widget)``."""

    def __init__(
        self,
        kind: str = "progressive",
        alpha: float | str = 2.0,
        num_frames: int = 16,
        seed: int = 0,
        *,
        runs_root: str | Path | None = None,
        run_dir: str | Path | None = None,
        image_run_dir: str | Path | None = None,
        dataset=None,
        loader: Callable | None = None,
        sampler: str = "heun",
        num_steps: int = 18,
        gallery_alphas: Sequence[float | str] = (0.0, 0.5, 2.0, 10.0, "inf"),
    ):
        import ipywidgets as w

        self.prior = PriorExplorer(kind, alpha, num_frames, seed)
        runs_root = runs_root or default_runs_root()
        video_runs = [Path(run_dir)] if run_dir else find_runs(runs_root, phase="video")
        image_runs = [Path(image_run_dir)] if image_run_dir else find_runs(runs_root, phase="image")
        self.generate = GeneratePanel(
            self.prior,
            video_runs,
            loader=loader,
            sampler=sampler,
            num_steps=num_steps,
            gallery_alphas=gallery_alphas,
        )
        self.inversion = InversionPanel(image_runs, dataset=dataset, loader=loader)
        self.widget = w.Tab(children=[self.prior.widget, self.generate.widget, self.inversion.widget])
        for i, title in enumerate(("noise prior", "generate", "inversion playground")):
            self.widget.set_title(i, title)
