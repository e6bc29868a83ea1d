"""What every panel shares: alpha parsing/formatting, the alpha control, run discovery, the model-panel base.

- :func:`parse_alpha` / :func:`format_alpha` -- alpha in [0, inf], from numbers or ``"inf"``, shown as "∞".
- :class:`AlphaControl` -- a ``FloatLogSlider`` over [0.01, 100] plus the "0 / slider / inf" toggle.
- :func:`find_runs`, :func:`model_video_shape` -- which trained runs exist under a root (the
  explorer's is :func:`pyoco_lab.training.default_runs_root`: ``$PYOCO_RUNS``, else the repository's
  ``runs/``) and what video shape a run generates.
- :class:`ModelPanel` -- base of every panel that needs a trained model: run dropdown, a cached
  EMA denoiser, status line, progress bar (and a callback that drives it), errors shown in red.
- :func:`_state_html` -- a readout that also carries the panel state as JSON (the browser test reads it).
- :class:`VideoCache`, :func:`model_identity` -- sampled videos on disk, one file per (model, prior, sampler,
  steps, seed, clip shape), keyed by what the model is (a shipped model's weights sha256, a run's checkpoint
  and when it was written): Generate and the zoo show a setting sampled once again at once.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as w
import torch

from pyoco_lab import noise as noise_lib
from pyoco_lab.fileio import json_digest
from pyoco_lab.training import load_config, load_denoiser, pretrained, resolve_checkpoint

ALPHA_LOG_RANGE = (-2.0, 2.0)  # exponents of the log slider: alpha in [0.01, 100]
ALPHA_MODES = (("α = 0 (i.i.d.)", "zero"), ("slider", "slider"), ("α = ∞ (frozen)", "inf"))
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
# Controls


class AlphaControl:
    """alpha in [0, inf] as two widgets: a log slider (``slider``) and a "0 / slider / inf" toggle (``mode``).

    Section 4: 0 is i.i.d. noise, inf identical frames; a log slider reaches neither end, hence the
    toggle. Moving the slider switches the toggle back to "slider". ``widget`` lays both out in a row.
    """

    def __init__(self, alpha: float | str = 2.0):
        alpha = parse_alpha(alpha)
        low, high = ALPHA_LOG_RANGE
        finite = min(max(alpha, 10**low), 10**high) if 0 < alpha < math.inf else 1.0
        self.slider = w.FloatLogSlider(
            value=finite, base=10, min=low, max=high, step=0.001, description="alpha", readout_format=".3g"
        )
        mode = "zero" if alpha == 0 else "inf" if math.isinf(alpha) else "slider"
        self.mode = w.ToggleButtons(options=ALPHA_MODES, value=mode, description="alpha end")
        self.widget = w.HBox([self.slider, self.mode])

    @property
    def value(self) -> float:
        mode = self.mode.value
        return 0.0 if mode == "zero" else math.inf if mode == "inf" else float(self.slider.value)

    def observe(self, handler: Callable) -> None:
        """Call ``handler(change)`` once whenever the alpha value changes (slider or toggle)."""

        def on_slider(change) -> None:
            # Moving the slider means "use this finite alpha": leave the 0/inf end if one was chosen
            # (that change itself reaches the handler through the toggle, so do not call it twice).
            if self.mode.value != "slider":
                self.mode.value = "slider"
            else:
                handler(change)

        self.slider.observe(on_slider, names="value")
        self.mode.observe(handler, names="value")


def _state_html(state: dict, text: str) -> str:
    """Readable summary plus the state as JSON in a data attribute (read by the browser test)."""
    payload = html.escape(json.dumps(state), quote=True)
    return f'<span class="pyoco-state" data-state="{payload}">{html.escape(text)}</span>'


# ----------------------------------------------------------------------------------------------
# Runs of `pyoco-lab train`


def find_runs(root: str | Path = "runs", *, phase: str | None = None) -> list[Path]:
    """Finished-or-checkpointed runs of ``pyoco-lab train`` under ``root``, "quick" ones first, then newest.

    A run is a folder with ``config.json`` and ``checkpoints/latest.json`` (the layout of
    :mod:`pyoco_lab.training`); ``phase`` ("image" or "video") keeps runs of that training phase.
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


# ----------------------------------------------------------------------------------------------
# Base of the panels that need a trained model


def load_once(cache: dict, loader: Callable | None, run) -> tuple:
    """(denoiser in eval mode, config) of ``run``, loaded by ``loader`` (default ``load_denoiser``) the first
    time and kept in ``cache``: every panel's one way to load a model."""
    run = str(run)
    if run not in cache:
        denoiser, config = (loader if loader is not None else load_denoiser)(run)
        if isinstance(denoiser, torch.nn.Module):
            denoiser.eval()
        cache[run] = (denoiser, config)
    return cache[run]


class ModelPanel:
    """Shared plumbing: pick a run, load its EMA denoiser once, report status, disable if none.

    Subclasses add their controls and build ``self.widget`` (usually starting with ``self.run``
    and ending with ``self.status``); their actions call :meth:`load`, drive ``self.progress``
    through :meth:`_progress_callback` and report exceptions with :meth:`_fail`.
    """

    def __init__(self, runs: Sequence[Path], loader: Callable | None, none_message: str):
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
        """(denoiser, config) of the selected run, loaded once (``loader`` defaults to ``load_denoiser``)."""
        return load_once(self._cache, self.loader, self.run.value)

    def _progress_callback(self, total: int, offset: int = 0):
        """A sampler ``callback(i, x)`` that moves ``self.progress`` to ``offset + i + 1`` of ``total``."""
        self.progress.max = max(total, 1)

        def step(i, x):
            self.progress.value = offset + i + 1

        return step

    def _fail(self, error: Exception) -> None:
        self.status.value = (
            f'<span style="color:#a33">{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>'
        )


def model_identity(model: str | os.PathLike) -> str:
    """``pretrained:NAME@<sha256>`` for a shipped model; ``<checkpoint folder>@<mtime of its files>`` for a
    run (its latest checkpoint: training further makes new videos); the path itself when neither resolves."""
    if pretrained.is_pretrained(str(model)):
        return f"{model}@{pretrained.get(str(model)).sha256}"
    try:
        checkpoint, _ = resolve_checkpoint(model)
    except (FileNotFoundError, OSError):
        return str(Path(model).resolve())
    written = max((p.stat().st_mtime_ns for p in checkpoint.iterdir() if p.is_file()), default=0)
    return f"{checkpoint.resolve()}@{written}"


# The zoo tab's default view (every shipped video model, its recorded sampling prior, DEIS 6, seeds 0-2),
# sampled once by `pyoco-lab pretrained zoo-videos` and shipped beside the weights, so a fresh clone's zoo
# tab shows videos before anything is sampled. Keyed like every cached video: a model's sha256 is in the key,
# so a re-trained model never shows an old model's clips.
SHIPPED_VIDEOS_DIR = pretrained.WEIGHTS_DIR / "zoo-videos"


class VideoCache:
    """Sampled videos (F, C, H, W) on disk under ``directory``, one ``<key>.pt`` each; ``directory`` None:
    nothing is kept. Files are written to a temporary name and moved into place (a killed kernel leaves
    no half file), and only files this cache wrote are ever read back.

    ``shipped`` is a read-only folder read after ``directory`` (default: the videos shipped with the lab,
    :data:`SHIPPED_VIDEOS_DIR`); ``dtype`` is what :meth:`put` stores (the shipped videos: float16, half
    the bytes; :meth:`get` always returns float32).
    """

    def __init__(
        self,
        directory: str | os.PathLike | None,
        *,
        shipped: str | os.PathLike | None = SHIPPED_VIDEOS_DIR,
        dtype: torch.dtype | None = None,
    ):
        self.directory = Path(directory) if directory is not None else None
        self.shipped = Path(shipped) if shipped is not None else None
        self.dtype = dtype

    @staticmethod
    def key(model: str, kind: str, alpha: float, sampler: str, steps: int, seed: int, shape) -> str:
        alpha = "inf" if alpha == float("inf") else float(alpha)
        parts = [model, kind, alpha, sampler, int(steps), int(seed), [int(s) for s in shape]]
        return json_digest(parts, 24)

    def get(self, key: str) -> torch.Tensor | None:
        for folder in (self.directory, self.shipped):
            if folder is None or not (folder / f"{key}.pt").is_file():
                continue
            try:
                return torch.load(folder / f"{key}.pt", map_location="cpu", weights_only=True).float()
            except Exception:  # a damaged file is sampled again (and replaced)
                continue
        return None

    def put(self, key: str, video: torch.Tensor) -> None:
        if self.directory is None:
            return
        partial = self.directory / f".{key}.{os.getpid()}.partial"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stored = video.detach().cpu().contiguous()
            torch.save(stored if self.dtype is None else stored.to(self.dtype), partial)
            os.replace(partial, self.directory / f"{key}.pt")
        except OSError:  # a read-only or full disk: the video is shown, only not kept
            partial.unlink(missing_ok=True)
