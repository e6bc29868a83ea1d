"""The "zoo" tab: every video model side by side (issue #43) -- a row per model, a column per seed, one GIF
so every clip loops in sync, each row labelled with what the model was trained with *and* what it was
sampled with.

Clips come through the explorer's video cache (``common.VideoCache``, ``generate.cached_video``): a
setting sampled once shows again at once, in this session or the next.

- :class:`ZooPanel` -- the rows: every shipped video model (the alpha zoo) and the user's video runs;
  *sample with* each model's default (its recorded sampling prior where a sweep chose one, issue #38, else
  its training prior), each model's training prior, or one prior for all (the noise-prior tab's: a
  train/sample mismatch for most rows, labelled so); the sampler, its steps and the seeds beside them.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as w
import torch

from pyoco_lab.training import load_config, pretrained
from pyoco_lab.viz.explorer.common import SHIPPED_VIDEOS_DIR, VideoCache, load_once
from pyoco_lab.viz.explorer.generate import SAMPLER_CHOICES, cached_video, prior_text, training_prior
from pyoco_lab.viz.explorer.prior import PriorExplorer
from pyoco_lab.viz.video import video_table

__all__ = ["SAMPLE_WITH", "ZooPanel"]

SAMPLE_WITH = (
    ("each model's default", "default"),
    ("each model's training prior", "training"),
    ("one prior for all (the noise-prior tab's)", "slider"),
)


class _NotCached(Exception):
    """A clip of the view is not on disk (``show(cached_only=True)`` then shows nothing)."""


def _not_cached():
    raise _NotCached


class ZooPanel:
    """Every video model in one view: ``show()`` samples (or reads from the cache) a clip per model and seed
    and tiles them, a row per model; returns {model: [video per seed]} (None after showing an error)."""

    def __init__(
        self,
        explorer: PriorExplorer,
        models: Sequence[str | os.PathLike],
        *,
        loader: Callable | None = None,
        cache: VideoCache | None = None,
        sampler: str = "deis",
        num_steps: int = 6,
        seeds: Sequence[int] = (0, 1, 2),
        scale: int = 3,
    ):
        if sampler not in SAMPLER_CHOICES:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLER_CHOICES)}")
        self.explorer = explorer
        self.models = [str(m) for m in models]
        self.loader = loader
        self.cache = cache or VideoCache(None)
        self.scale = scale
        self._loaded: dict[str, tuple] = {}
        self.row_labels: list[str] = []  # each row of the last view: the model, trained with, sampled with
        self.sample_with = w.ToggleButtons(options=SAMPLE_WITH, value="default", description="sample with")
        self.sampler = w.Dropdown(options=SAMPLER_CHOICES, value=sampler, description="sampler")
        self.num_steps = w.IntSlider(value=num_steps, min=2, max=64, description="steps")
        self.seeds = w.Text(value=" ".join(str(s) for s in seeds), description="seeds")
        self.button = w.Button(description="Show the zoo", button_style="primary", icon="th")
        self.button.disabled = not self.models
        self.button.on_click(lambda _: self.show())
        self.progress = w.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = w.HTML()
        if not self.models:
            self.status.value = (
                "No video model: the lab ships the alpha zoo (pretrained:zoo-32-*); reinstall it."
            )
        self.grid = w.HTML()
        self.grid.add_class("pyoco-zoo")
        # A fresh Run All shows the zoo at once where every clip of the default view is on disk (the
        # shipped zoo videos, or the user's cache); nothing is loaded or sampled here.
        if self.models:
            self.show(cached_only=True)
        self.widget = w.VBox(
            [
                self.sample_with,
                w.HBox([self.sampler, self.num_steps, self.seeds]),
                w.HBox([self.button, self.progress]),
                self.status,
                self.grid,
            ]
        )

    def _config(self, model: str):
        if pretrained.is_pretrained(model):
            return pretrained.get(model).train_config
        try:
            return load_config(model)
        except (OSError, ValueError, KeyError, TypeError):
            return self._load(model)[1]

    def _load(self, model: str) -> tuple:
        return load_once(self._loaded, self.loader, model)

    def seed_list(self) -> list[int]:
        try:
            seeds = [int(s) for s in self.seeds.value.replace(",", " ").split()]
        except ValueError:
            raise ValueError(
                f"seeds {self.seeds.value!r}: whole numbers separated by spaces, e.g. 0 1 2"
            ) from None
        if not seeds:
            raise ValueError("seeds: give at least one, e.g. 0 1 2")
        return seeds

    def rows(self) -> list[tuple[str, tuple[str, float] | None, tuple[str, float]]]:
        """(model, trained with, sampled with) of every row, in the order shown."""
        rows = []
        for model in self.models:
            trained = training_prior(self._config(model))
            recorded = pretrained.recorded_sampling_prior(model)
            if self.sample_with.value == "slider":
                sampled = (self.explorer.kind.value, self.explorer.alpha)
            elif self.sample_with.value == "default" and recorded is not None:
                sampled = training_prior({"noise": recorded.kind, "alpha": recorded.alpha})
            else:
                sampled = trained if trained is not None else (self.explorer.kind.value, self.explorer.alpha)
            rows.append((model, trained, sampled))
        return rows

    @staticmethod
    def row_label(model: str, trained, sampled) -> str:
        name = model.removeprefix(pretrained.PREFIX)
        trained_text = prior_text(*trained) if trained is not None else "unknown"
        if trained is not None and training_prior({"noise": sampled[0], "alpha": sampled[1]}) == trained:
            return f"{name}: trained and sampled with {trained_text}"
        return f"{name}: trained with {trained_text}; sampled with {prior_text(*sampled)}"

    def show(self, *, cached_only: bool = False) -> dict[str, list[torch.Tensor]] | None:
        """Every model's row; ``cached_only``: only if every clip is cached (None, nothing shown, if not)."""
        self.button.disabled = True
        try:
            start = time.perf_counter()
            seeds, rows = self.seed_list(), self.rows()
            steps, sampler = self.num_steps.value, self.sampler.value
            self.progress.max, self.progress.value = len(rows) * len(seeds), 0
            videos: dict[str, list[torch.Tensor]] = {}
            cached = 0
            self.row_labels = []
            for model, trained, sampled in rows:
                label = self.row_label(model, trained, sampled)
                config = self._config(model)
                clips = []
                for seed in seeds:
                    self.status.value = f"sampling {html.escape(label)}, seed {seed} ..."
                    video, hit = cached_video(
                        self.cache,
                        model,
                        _not_cached if cached_only else lambda model=model: self._load(model),
                        config,
                        *sampled,
                        seed=seed,
                        sampler=sampler,
                        num_steps=steps,
                    )
                    clips.append(video)
                    cached += hit
                    self.progress.value += 1
                videos[model] = clips
                self.row_labels.append(label)
            self.grid.value = video_table(
                list(videos.values()),
                self.row_labels,
                [f"seed {s}" for s in seeds],
                fps=self.explorer.fps,
                scale=self.scale,
                title=f"{len(rows)} models, {sampler} × {steps}, the same seeds in every row (in sync)",
            )
            took = time.perf_counter() - start
            self.status.value = f"done in {took:.1f} s ({cached} of {self.progress.max} clips from the cache)"
            return videos
        except _NotCached:
            self.progress.value = 0
            self.status.value = "press <b>Show the zoo</b> to sample the clips not yet cached"
            return None
        except Exception as error:  # shown in the panel, as every panel does
            why = f"{html.escape(type(error).__name__)}: {html.escape(str(error))}"
            self.status.value = f'<span style="color:#a33">{why}</span>'
            return None
        finally:
            self.button.disabled = not self.models


def ship_zoo_videos(
    directory: str | os.PathLike = SHIPPED_VIDEOS_DIR, *, seeds: Sequence[int] = (0, 1, 2)
) -> tuple[int, int]:
    """Sample the zoo tab's default view into ``directory`` (float16 ``.pt`` files keyed as every cached
    video): each current shipped video model at its recorded sampling prior, the zoo's sampler (DEIS 6),
    ``seeds``. Returns (clips written, clips already there). What ``pyoco-lab pretrained zoo-videos`` runs."""
    models = [pretrained.PREFIX + model.name for model in pretrained.current_models(phase="video")]
    cache = VideoCache(directory, shipped=None, dtype=torch.float16)
    before = set(Path(directory).glob("*.pt")) if Path(directory).is_dir() else set()
    panel = ZooPanel(PriorExplorer(), models, cache=cache, seeds=seeds)
    if panel.show() is None:
        raise RuntimeError(f"the zoo view failed: {html.unescape(panel.status.value)}")
    written = set(Path(directory).glob("*.pt")) - before
    return len(written), len(models) * len(seeds) - len(written)
