"""The "generate" tab: sample videos from trained video runs, by default with the prior each was trained with.

- :func:`generate_video` -- one video (F, C, H, W) from a denoiser, starting at prior noise (no widgets).
- :class:`GeneratePanel` -- run, sampler and steps, and *sample with*: **the run's own prior** (the
  default: the noise kind and alpha the run was trained with, read from its config and shown beside the
  toggle -- how the paper samples, one model per alpha, Fig. 6) or **the slider's prior** (the
  :class:`~pyoco_lab.viz.explorer.prior.PriorExplorer`'s kind and alpha: a train/sample mismatch,
  labelled as such). *Generate* shows one video; *Gallery over alphas* tiles videos that loop in sync:
  with the run's own prior and video runs of the same kind trained at several alphas, one video per
  run ("models trained at several α", Fig. 6); otherwise one model sampled at the gallery's alphas
  ("one model, sampled at several α", which is not Fig. 6).
"""

from __future__ import annotations

import functools
import html
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as w
import torch

from pyoco_lab import edm
from pyoco_lab import noise as noise_lib
from pyoco_lab.metrics import scene_consistency, yardsticks
from pyoco_lab.training import load_config, pretrained
from pyoco_lab.viz.explorer.common import (
    TRAIN_HINT,
    ModelPanel,
    VideoCache,
    format_alpha,
    load_once,
    model_identity,
    model_video_shape,
    parse_alpha,
)
from pyoco_lab.viz.explorer.prior import PriorExplorer
from pyoco_lab.viz.video import video_grid, video_html

SAMPLER_CHOICES = ("heun", "euler", "deis", "rk3", "stochastic")


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


def cached_video(
    cache: VideoCache,
    model: str | os.PathLike,
    denoiser_and_config: Callable[[], tuple],
    config,
    kind: str,
    alpha: float,
    *,
    seed: int,
    sampler: str,
    num_steps: int,
    class_label: int | None = None,
    callback=None,
) -> tuple[torch.Tensor, bool]:
    """(video, whether it came from ``cache``): one video of ``model`` sampled with (kind, alpha); the
    denoiser is loaded (``denoiser_and_config()``) only when the cache does not hold it."""
    shape = model_video_shape(config)
    key = VideoCache.key(
        model_identity(model) + (f"#class{class_label}" if class_label is not None else ""),
        kind,
        alpha,
        sampler,
        num_steps,
        seed,
        shape,
    )
    video = cache.get(key)
    if video is not None:
        return video, True
    denoiser, _ = denoiser_and_config()
    video = generate_video(
        denoiser,
        kind,
        alpha,
        shape,
        seed=seed,
        sampler=sampler,
        num_steps=num_steps,
        class_label=class_label,
        callback=callback,
    )
    cache.put(key, video)
    return video, False


PRIOR_SOURCES = (("the run's own prior", "run"), ("the slider's prior", "slider"))
MODELS_GALLERY = "models trained at several α, each sampled with its own prior (Fig. 6)"
ONE_MODEL_GALLERY = "one model, sampled at several α (not Fig. 6: the paper trains one model per α)"


def training_prior(config) -> tuple[str, float] | None:
    """(noise kind, alpha) a run was trained with, from its TrainConfig (or dict); None if not a video run."""
    get = (
        config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
    )
    if get("phase", "video") != "video" or get("noise", None) is None:
        return None
    kind, alpha = str(get("noise")), parse_alpha(get("alpha", 0.0))
    return ("iid", 0.0) if kind == "iid" or alpha == 0.0 else (kind, alpha)


def prior_text(kind: str, alpha: float) -> str:
    return noise_lib.NoisePrior(kind, alpha).label


class GeneratePanel(ModelPanel):
    """Generate button (one video) and a synced gallery; samples with the run's own prior by default."""

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
        prior_source: str = "run",
        cache: VideoCache | None = None,
    ):
        message = f"No trained video checkpoint found. Train one first: {TRAIN_HINT} (then re-run this cell)."
        super().__init__(runs, loader, message)
        if sampler not in SAMPLER_CHOICES:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLER_CHOICES)}")
        if prior_source not in dict(PRIOR_SOURCES).values():
            raise ValueError(f"prior_source must be 'run' or 'slider', got {prior_source!r}")
        self.explorer = explorer
        self.runs = [Path(r) for r in runs]
        self.cache = cache or VideoCache(None)  # sampled videos on disk: a setting seen before shows at once
        self.from_cache = False  # whether the last video came from the cache
        if isinstance(gallery_alphas, str):
            raise ValueError(
                f"gallery_alphas must be a list of alphas, got the string {gallery_alphas!r}; "
                "with papermill pass it as YAML: -y 'gallery_alphas: [0, 2, inf]' or -p with a list"
            )
        self.gallery_alphas = [parse_alpha(a) for a in gallery_alphas]
        self.scale = scale
        self.label = ""  # the caption of the last video generated (what it was sampled with)
        self.gallery_kind = ""  # MODELS_GALLERY or ONE_MODEL_GALLERY, for the last gallery
        self.gallery_labels: list[str] = []  # each tile of the last gallery: trained and sampled with
        self.sampler = w.Dropdown(options=SAMPLER_CHOICES, value=sampler, description="sampler")
        self.num_steps = w.IntSlider(value=num_steps, min=2, max=64, description="steps")
        self.class_label = w.IntText(value=0, description="class", layout=w.Layout(width="160px"))
        self.class_label.tooltip = "class label, used only by class-conditional runs"
        self.prior_source = w.ToggleButtons(
            options=PRIOR_SOURCES, value=prior_source, description="sample with"
        )
        self.run_prior = w.HTML()
        self.run_prior.add_class("pyoco-run-prior")
        # A shipped model may record another sampling prior than it was trained with (issue #38): that is the
        # default, and this box, shown only for such a model, samples with the training prior instead.
        self.use_training_prior = w.Checkbox(value=False, description="its training prior", indent=False)
        self.use_training_prior.add_class("pyoco-use-training-prior")
        # Scene consistency (issue #38) of each clip sampled: which frames open another scene. Off by
        # default: the first check builds the real clips' cut threshold (about half a minute).
        self.mark_cuts = w.Checkbox(value=False, description="mark cuts", indent=False)
        self.mark_cuts.tooltip = (
            "say which frames open another scene (a jump as large as between two scenes of the data); "
            "the first check measures real clips once"
        )
        self.mark_cuts.add_class("pyoco-mark-cuts")
        self._scene_judges: dict[tuple[int, int], tuple] = {}
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.gallery_button = w.Button(description="Gallery over alphas", icon="th")
        self.video = w.HTML()
        self.video.add_class("pyoco-generated")
        self.gallery = w.HTML()
        for b in (self.button, self.gallery_button):
            b.disabled = not self.available
        self.button.on_click(lambda _: self.generate())
        self.gallery_button.on_click(lambda _: self.generate_gallery())
        self.run.observe(lambda _: self._show_run_prior(), names="value")
        self.prior_source.observe(lambda _: self._show_run_prior(), names="value")
        self.use_training_prior.observe(lambda _: self._show_run_prior(), names="value")
        explorer.kind.observe(lambda _: self._show_run_prior(), names="value")
        explorer.alpha_control.observe(lambda _: self._show_run_prior())
        self._show_run_prior()
        self.widget = w.VBox(
            [
                self.run,
                w.HBox([self.prior_source, self.use_training_prior, self.run_prior]),
                w.HBox([self.sampler, self.num_steps, self.class_label, self.mark_cuts]),
                w.HBox([self.button, self.gallery_button, self.progress]),
                self.status,
                self.video,
                self.gallery,
            ]
        )

    # -- which prior -----------------------------------------------------------------------------

    def _config(self, run) -> object | None:
        """A run's TrainConfig without loading weights when possible (config.json), else via the loader."""
        if not run:
            return None
        if pretrained.is_pretrained(str(run)):  # a shipped model (the alpha zoo): its registry entry
            return pretrained.get(str(run)).train_config
        try:
            return load_config(run)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if self.loader is None:
            return None
        try:
            return self._load_run(run)[1]
        except Exception:  # shown as "unknown"; Generate reports the error itself
            return None

    def run_training_prior(self, run=None) -> tuple[str, float] | None:
        """(kind, alpha) the selected run (or ``run``) was trained with; None when unknown."""
        config = self._config(run if run is not None else self.run.value)
        return training_prior(config) if config is not None else None

    def recorded_prior(self, run=None) -> tuple[str, float] | None:
        """(kind, alpha) a shipped model records as its sampling prior (``pretrained.record_sampling``), or
        None: no record, not a shipped model, or "its training prior" ticked."""
        run = str(run if run is not None else self.run.value)
        recorded = None if self.use_training_prior.value else pretrained.recorded_sampling_prior(run)
        return training_prior({"noise": recorded.kind, "alpha": recorded.alpha}) if recorded else None

    def sampling_prior(self) -> tuple[str, float, str]:
        """(kind, alpha, "recorded" | "run" | "slider"): what Generate samples with now."""
        if self.prior_source.value == "run":
            recorded = self.recorded_prior()
            if recorded is not None:
                return recorded[0], recorded[1], "recorded"
            trained = self.run_training_prior()
            if trained is not None:
                return trained[0], trained[1], "run"
        return self.explorer.kind.value, self.explorer.alpha, "slider"

    def _show_run_prior(self) -> None:
        trained = self.run_training_prior() if self.available else None
        slider = (self.explorer.kind.value, self.explorer.alpha)
        run = str(self.run.value)
        records = self.available and pretrained.recorded_sampling_prior(run) is not None
        from_run = self.prior_source.value == "run"
        self.use_training_prior.layout.display = "" if records and from_run else "none"
        if trained is None:
            text = f"trained with: unknown (no run config) — sampling with the slider's {prior_text(*slider)}"
        else:
            text = f"trained with: {prior_text(*trained)}"
            recorded = self.recorded_prior() if from_run else None
            if recorded is not None:
                text += f" — samples with its recorded prior: {prior_text(*recorded)}"
            elif records and from_run:
                text += " — sampling with the training prior (it records another: untick to use that)"
            if (
                self.prior_source.value == "slider"
                and training_prior({"noise": slider[0], "alpha": slider[1]}) != trained
            ):
                text += f" — sampling with the slider's {prior_text(*slider)}: a train/sample mismatch"
        self.run_prior.value = f'<span class="pyoco-run-prior-text">{html.escape(text)}</span>'

    # -- sampling --------------------------------------------------------------------------------

    def _load_run(self, run):
        """(denoiser, config) of ``run``, loaded once (the same cache as :meth:`load`)."""
        return load_once(self._cache, self.loader, run)

    def _sample(self, kind: str, alpha: float, callback, run=None) -> torch.Tensor:
        """One video of ``run`` (the selected one) at the model's own clip shape, from the video cache when
        it holds this setting (``self.from_cache`` says which)."""
        run = run if run is not None else self.run.value
        config = self._config(run) or self._load_run(run)[1]
        conditional = bool(getattr(config, "class_conditional", False))
        video, self.from_cache = cached_video(
            self.cache,
            run,
            lambda: self._load_run(run),
            config,
            kind,
            alpha,
            seed=self.explorer.seed.value,
            sampler=self.sampler.value,
            num_steps=self.num_steps.value,
            class_label=self.class_label.value if conditional else None,
            callback=callback,
        )
        if self.from_cache:
            self.progress.value = self.progress.max
        return video

    def _caption(self, kind: str, alpha: float, source: str) -> str:
        steps = f"{self.sampler.value} × {self.num_steps.value}"
        if source == "run":
            return f"the run's own prior: {prior_text(kind, alpha)}, {steps}"
        trained = self.run_training_prior()
        if source == "recorded":
            trained_text = prior_text(*trained) if trained is not None else "unknown"
            recorded = prior_text(kind, alpha)
            return f"the model's recorded sampling prior: {recorded} (trained with {trained_text}), {steps}"
        trained_text = f"; trained with {prior_text(*trained)}" if trained is not None else ""
        return f"the slider's prior: {prior_text(kind, alpha)}{trained_text}, {steps}"

    def generate(self) -> torch.Tensor | None:
        """Sample one video with :meth:`sampling_prior` and show it, captioned; returns it (F, C, H, W)."""
        e = self.explorer
        self.button.disabled = True
        try:
            kind, alpha, source = self.sampling_prior()
            label = self._caption(kind, alpha, source)
            self.status.value = f"sampling {html.escape(label)} ..."
            start = time.perf_counter()
            video = self._sample(kind, alpha, self._progress_callback(self.num_steps.value))
            label += self._scene_note(video)
            self.label = label
            self.video.value = video_html(video, fps=e.fps, scale=self.scale, caption=label)
            cached = " (from the cache)" if self.from_cache else ""
            self.status.value = f"done in {time.perf_counter() - start:.1f} s{cached}"
            return video
        except Exception as error:  # shown in the panel: a notebook user needs the message, not a dead button
            self._fail(error)
            return None
        finally:
            self.button.disabled = not self.available

    def _scene_note(self, video: torch.Tensor) -> str:
        """ " — holds one scene" or " — cuts at frames 3, 6" for a clip (F, C, H, W) when "mark cuts" is
        ticked (``metrics.scene_consistency``: a jump between neighbouring frames as large as the distance
        between two scenes), else ""."""
        if not self.mark_cuts.value:
            return ""
        frames, _, height, _ = video.shape
        key = (int(height), int(frames))
        if key not in self._scene_judges:
            self.status.value = f"measuring the cut threshold on real {height} px, {frames}-frame clips ..."
            self._scene_judges[key] = yardsticks.clip_scene_judge(*key)
        net, reference = self._scene_judges[key]
        clip = video.detach().float().cpu().clamp(-1, 1)[None]
        jumps = scene_consistency.clip_jumps(net, reference.reference_features, clip)
        cuts = scene_consistency.cut_frames(jumps, reference.threshold)[0]
        if not cuts:
            return " — holds one scene"
        return f" — cuts at frame{'s' if len(cuts) > 1 else ''} {', '.join(map(str, cuts))}"

    def gallery_runs(self) -> list[tuple[float, Path]]:
        """(training alpha, run) of the runs trained with the selected run's prior kind (and i.i.d.) at
        distinct alphas, same clip shape, sorted by alpha: a Fig. 6 gallery ([] when fewer than two)."""
        selected = self._config(self.run.value)
        trained = training_prior(selected) if selected is not None else None
        if trained is None:
            return []
        shape = model_video_shape(selected)
        found: dict[float, Path] = {}
        for run in self.runs:
            config = self._config(run)
            prior = training_prior(config) if config is not None else None
            if prior is None or model_video_shape(config) != shape or prior[0] not in (trained[0], "iid"):
                continue
            if trained[0] == "iid" and prior[0] != "iid":
                continue
            found.setdefault(prior[1], run)
        if str(self.run.value) and trained[1] in found:
            found[trained[1]] = Path(self.run.value)  # the selected run stands for its alpha
        return sorted(found.items()) if len(found) >= 2 else []

    def generate_gallery(self) -> list[torch.Tensor] | None:
        """Videos tiled so they loop in sync (same seed), labelled for what they are.

        With the run's own prior and video runs of its kind trained at several alphas: one video per run,
        each sampled with its own prior (:data:`MODELS_GALLERY`). Otherwise one video of the selected run
        per alpha of ``gallery_alphas`` (:data:`ONE_MODEL_GALLERY`).
        """
        e = self.explorer
        steps, videos = self.num_steps.value, []
        self.gallery_button.disabled = True
        try:
            start = time.perf_counter()
            runs = self.gallery_runs() if self.prior_source.value == "run" else []
            if runs:
                trained_kind = training_prior(self._config(self.run.value))[0]
                items, labels = [], []
                for a, run in runs:  # each model with its own prior: the recorded one where it has one
                    sampled = (
                        self.recorded_prior(run) or training_prior(self._config(run)) or (trained_kind, a)
                    )
                    items.append((*sampled, run))
                    label = f"trained at α = {format_alpha(a)}"
                    if sampled != training_prior(self._config(run)):
                        label += f", sampled at {prior_text(*sampled)}"
                    labels.append(label)
                gallery_kind = MODELS_GALLERY
            else:
                kind, _, _ = self.sampling_prior()
                if kind == "iid":  # an i.i.d. run: vary the slider's kind instead
                    kind = e.kind.value
                items = [(kind, a, None) for a in self.gallery_alphas]
                gallery_kind, labels = (
                    ONE_MODEL_GALLERY,
                    [f"α = {format_alpha(a)}" for a in self.gallery_alphas],
                )
            total = steps * len(items)
            for k, (kind, alpha, run) in enumerate(items):
                self.status.value = f"gallery: α = {format_alpha(alpha)} ({k + 1}/{len(items)})"
                self.progress.max = total
                callback = self._progress_callback(total, offset=k * steps)
                videos.append(self._sample(kind, alpha, callback, run=run))
                labels[k] += self._scene_note(videos[-1])
            # the selected model's kind names a gallery of models (its first item may be the i.i.d. one)
            prior_kind = trained_kind if runs else (items[0][0] if items else e.kind.value)
            title = (
                f"{gallery_kind} — {prior_kind} prior, seed {e.seed.value}, {self.sampler.value} × {steps}"
            )
            self.gallery_kind, self.gallery_labels = gallery_kind, labels  # what each tile was sampled with
            self.gallery.value = video_grid(videos, labels, fps=e.fps, scale=self.scale, title=title)
            self.status.value = f"gallery done in {time.perf_counter() - start:.1f} s"
            return videos
        except Exception as error:
            self._fail(error)
            return None
        finally:
            self.gallery_button.disabled = not self.available
