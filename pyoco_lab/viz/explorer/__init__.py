"""The interactive explorer: move alpha, watch the noise prior, its correlation and its samples.

``display(Explorer(...).widget)`` in a notebook shows four tabs. Each panel is a small class
owning its ipywidgets and their ``observe`` handlers, so the figures update live as controls
move, without re-running cells. One module per panel, each with its plain functions (no widgets)
next to it, so the notebook's static, papermill-friendly figures and the tests use the same code:

- :mod:`~pyoco_lab.viz.explorer.common` -- shared by all panels: :func:`parse_alpha`,
  :func:`format_alpha`, :class:`AlphaControl` (the 0 / slider / inf toggle: alpha lives in
  [0, inf], Section 4, which a log slider cannot reach), run discovery (:func:`find_runs`,
  :func:`model_video_shape`), and ``ModelPanel``, the base of panels that need a trained model
  (run dropdown, cached denoiser, status line, progress bar and its sampler callback).
- :mod:`~pyoco_lab.viz.explorer.prior` -- "noise prior": :class:`PriorExplorer`,
  :func:`prior_matrices`, and the static :func:`prior_figure`, :func:`alpha_sweep_figure`.
- :mod:`~pyoco_lab.viz.explorer.generate` -- "generate": :class:`GeneratePanel` (one video, and a
  gallery over alphas that loops in sync), :func:`generate_video`.
- :mod:`~pyoco_lab.viz.explorer.zoo` -- "zoo": :class:`ZooPanel`, every video model side by side (a row
  per model, a column per seed, one GIF looping in sync), labelled with what each was trained and sampled
  with; clips come through the video cache (``common.VideoCache``), as Generate's do.
- :mod:`~pyoco_lab.viz.explorer.inversion` -- "inversion playground": :class:`InversionPanel`,
  :func:`invert_clip`, :func:`inversion_summary`, :func:`load_clips` (Fig. 2).
- :mod:`~pyoco_lab.viz.explorer.app` -- :class:`Explorer`, which builds the panels and the tabs.

Imports go one way: ``common`` <- panels (``generate`` also reads ``prior``) <- ``app`` <- this file.

How to add a panel
------------------
1. New module ``pyoco_lab/viz/explorer/<name>.py`` whose docstring says what the tab shows. Put
   the computation in plain functions (tensors in, tensors/dicts out) above the panel class.
2. The panel is a class whose ``__init__`` builds its widgets as attributes, wires them with
   ``observe`` / ``on_click``, and sets ``self.widget`` (the tab's content). Actions are methods
   that return their result (or None after showing the error in the panel), so tests drive the
   panel by setting ``.value`` or calling the method -- no browser needed.

   - Reads the prior tab's controls? Take the :class:`PriorExplorer` and read ``kind.value``,
     ``alpha``, ``seed.value``, or append a callback to its ``listeners`` (called with its state).
   - Needs a trained run? Subclass ``common.ModelPanel``: ``super().__init__(runs, loader, message)``,
     put ``self.run`` and ``self.status`` in the layout, disable buttons when ``not self.available``,
     get ``(denoiser, config) = self.load()``, pass ``self._progress_callback(total)`` to the
     sampler, and call ``self._fail(error)`` in ``except``.
   - Needs its own alpha? Use :class:`AlphaControl` (``.widget``, ``.value``, ``.observe``).
3. Register it in :class:`~pyoco_lab.viz.explorer.app.Explorer`: construct it in ``__init__``
   (runs from ``find_runs(runs_root, phase=...)``), keep it as an attribute, and append
   ``(title, panel)`` to ``self.tabs``.
4. Re-export its public names below (import and ``__all__``), test it in ``tests/test_explorer.py``
   and add its row to ``docs/explorer.md``.
"""

from pyoco_lab.training import default_runs_root
from pyoco_lab.viz.explorer.app import Explorer
from pyoco_lab.viz.explorer.common import (
    ALPHA_LOG_RANGE,
    ALPHA_MODES,
    NOISE_RANGE,
    SHIPPED_VIDEOS_DIR,
    TRAIN_HINT,
    AlphaControl,
    ModelPanel,
    VideoCache,
    find_runs,
    format_alpha,
    model_video_shape,
    parse_alpha,
)
from pyoco_lab.viz.explorer.generate import SAMPLER_CHOICES, GeneratePanel, generate_video
from pyoco_lab.viz.explorer.inversion import InversionPanel, inversion_summary, invert_clip, load_clips
from pyoco_lab.viz.explorer.prior import PriorExplorer, alpha_sweep_figure, prior_figure, prior_matrices
from pyoco_lab.viz.explorer.zoo import ZooPanel, ship_zoo_videos

__all__ = [
    "SHIPPED_VIDEOS_DIR",
    "ship_zoo_videos",
    "ALPHA_LOG_RANGE",
    "ALPHA_MODES",
    "NOISE_RANGE",
    "SAMPLER_CHOICES",
    "TRAIN_HINT",
    "AlphaControl",
    "Explorer",
    "GeneratePanel",
    "InversionPanel",
    "ModelPanel",
    "PriorExplorer",
    "VideoCache",
    "ZooPanel",
    "alpha_sweep_figure",
    "default_runs_root",
    "find_runs",
    "format_alpha",
    "generate_video",
    "inversion_summary",
    "invert_clip",
    "load_clips",
    "model_video_shape",
    "parse_alpha",
    "prior_figure",
    "prior_matrices",
]
