"""The :class:`Explorer`: builds every panel, finds the runs they need, and lays them out as tabs.

This is the only module that knows all panels; a new panel is constructed in
:meth:`Explorer.__init__` and added to its ``tabs`` list (see the recipe in
:mod:`pyoco_lab.viz.explorer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as w

from pyoco_lab.training import default_runs_root, pretrained
from pyoco_lab.viz.explorer.common import VideoCache, find_runs
from pyoco_lab.viz.explorer.generate import GeneratePanel
from pyoco_lab.viz.explorer.inversion import InversionPanel
from pyoco_lab.viz.explorer.prior import PriorExplorer
from pyoco_lab.viz.explorer.zoo import ZooPanel


class Explorer:
    """All panels in tabs: ``display(Explorer(...).widget)``.

    Each panel is an attribute (``prior``, ``generate``, ``zoo``, ``inversion``); ``tabs`` lists
    (title, panel) in tab order, and ``widget`` is the ``ipywidgets.Tab`` of their widgets.
    Runs come from ``run_dir`` / ``image_run_dir`` if given, else from :func:`find_runs` under
    ``runs_root`` (default :func:`pyoco_lab.training.default_runs_root`). Sampled videos are kept in
    ``video_cache`` (default ``<runs root>/explorer/videos``; None keeps nothing), so Generate and the zoo
    show a setting sampled before at once.
    """

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
        video_cache: str | Path | None = "default",
        zoo_seeds: Sequence[int] = (0, 1, 2),
    ):
        self.prior = PriorExplorer(kind, alpha, num_frames, seed)
        runs_root = runs_root or default_runs_root()
        if video_cache == "default":
            video_cache = Path(runs_root) / "explorer" / "videos"
        cache = VideoCache(video_cache)
        # Generate starts with the video models the lab ships (the alpha zoo, pretrained:NAME: one finetune
        # per prior, so moving alpha needs no training), then any video runs trained locally.
        zoo = [pretrained.PREFIX + model.name for model in pretrained.current_models(phase="video")]
        video_runs = [Path(run_dir)] if run_dir else [*zoo, *find_runs(runs_root, phase="video")]
        # The inversion playground starts with the image models the lab ships (pretrained:NAME; first
        # those whose inversion of held-out frames met the Gaussianity targets), then
        # any image runs trained locally; an explicit image_run_dir is used alone.
        shipped = [pretrained.PREFIX + model.name for model in pretrained.inversion_models()]
        image_runs = [image_run_dir] if image_run_dir else [*shipped, *find_runs(runs_root, phase="image")]
        self.generate = GeneratePanel(
            self.prior,
            video_runs,
            loader=loader,
            sampler=sampler,
            num_steps=num_steps,
            gallery_alphas=gallery_alphas,
            cache=cache,
        )
        # Every video model side by side (the zoo first), the same seeds in every row; DEIS 6 as the zoo's
        # measurements and pictures (docs/pretrained.md).
        self.zoo = ZooPanel(self.prior, video_runs, loader=loader, cache=cache, seeds=zoo_seeds)
        self.inversion = InversionPanel(image_runs, dataset=dataset, loader=loader)
        # Register a new panel here: one (title, panel) pair, in tab order.
        self.tabs: list[tuple[str, object]] = [
            ("noise prior", self.prior),
            ("generate", self.generate),
            ("zoo", self.zoo),
            ("inversion playground", self.inversion),
        ]
        self.widget = w.Tab(children=[panel.widget for _, panel in self.tabs])
        for i, (title, _) in enumerate(self.tabs):
            self.widget.set_title(i, title)
