"""The "inversion playground" tab: invert a real clip with the image model and compare with the priors.

- :func:`load_clips` -- test clips of the embedded dataset (or None with a printed hint).
- :func:`invert_clip` -- noise maps of a clip, each frame inverted by the image model (eq. 2 upwards).
- :func:`inversion_summary` -- cosine similarity of those maps next to the priors' closed forms,
  plus the best-fit alpha of each prior (Fig. 2). Both are plain functions (no widgets).
- :class:`InversionPanel` -- image run, clip number, ODE steps; shows clip and noise side by
  side and the similarity heatmaps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as w
import torch
from IPython.display import display

from pyoco_lab import edm
from pyoco_lab import noise as noise_lib
from pyoco_lab.data import EmbeddedVideoDataset
from pyoco_lab.viz.explorer.common import (
    NOISE_RANGE,
    TRAIN_HINT,
    ModelPanel,
    format_alpha,
    model_video_shape,
    parse_alpha,
)
from pyoco_lab.viz.figures import correlation_figure_plotly, cosine_similarity_matrix, mean_by_distance
from pyoco_lab.viz.video import video_html

# ----------------------------------------------------------------------------------------------
# Computations (no widgets)


def load_clips(resolution: int, num_frames: int, split: str = "test"):
    """Real clips for the inversion playground (the embedded dataset), or None with a printed hint."""
    try:
        # built on first use (offline, about a minute): the shipped image model needs no training run first
        return EmbeddedVideoDataset(
            resolution=resolution, split=split, num_frames=num_frames, build_if_missing=True
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"inversion playground: no clips ({error})")
        return None


def invert_clip(
    image_denoiser: Callable,
    clip: torch.Tensor,
    *,
    num_steps: int = 32,
    solver: str = "heun",
    callback: Callable | None = None,
) -> torch.Tensor:
    """Noise maps (F, C, H, W) of a real clip (F, C, H, W), each frame inverted by the *image* model.

    Frames are inverted independently (``frames_as_batch``), so any correlation between the noise
    maps comes from the data, not from the model -- the observation behind PYoCo (Fig. 2).
    """
    options = dict(num_steps=num_steps, solver=solver, frames_as_batch=True, callback=callback)
    return edm.invert(image_denoiser, clip[None], **options)[0]


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


# ----------------------------------------------------------------------------------------------
# The panel


class InversionPanel(ModelPanel):
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
            self.progress.value = 0  # moves per ODE step: num_steps - 1 of them
            steps = self.num_steps.value - 1
            noise = invert_clip(
                denoiser, clip, num_steps=self.num_steps.value, callback=self._progress_callback(steps)
            )
            self.result = inversion_summary(clip, noise, self.priors)
            self._render()
            return self.result
        except Exception as error:
            self._fail(error)
            return None
        finally:
            self.button.disabled = not self.available

    def _render(self) -> None:
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
