"""The "generate" tab: sample videos from a trained video run at the prior tab's noise prior.

- :func:`generate_video` -- one video (F, C, H, W) from a denoiser, starting at prior noise (no widgets).
- :class:`GeneratePanel` -- run, sampler and steps; *Generate* shows one video at the
  :class:`~pyoco_lab.viz.explorer.prior.PriorExplorer`'s kind, alpha and seed, *Gallery over
  alphas* one video per alpha (same seed) tiled so they loop in sync.
"""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as w
import torch

from pyoco_lab import edm
from pyoco_lab import noise as noise_lib
from pyoco_lab.viz.explorer.common import (
    TRAIN_HINT,
    ModelPanel,
    format_alpha,
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


class GeneratePanel(ModelPanel):
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
