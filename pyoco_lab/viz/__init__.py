"""Figures, inline video and the interactive ipywidgets explorer.

- :mod:`pyoco_lab.viz.video` -- ``video_html``, ``video_grid`` (synced tiles), ``gif_bytes``; the file writers
  ``save_video`` / ``tile_videos`` / ``to_uint8_frames`` live in :mod:`pyoco_lab.media` and are re-exported
  here so that a notebook needs one namespace for what it shows and saves.
- :mod:`pyoco_lab.viz.figures` -- correlation heatmaps and correlation-vs-distance curves
  (matplotlib for static PNGs, plotly for the live explorer).
- :mod:`pyoco_lab.viz.explorer` -- ``Explorer`` (tabs: noise prior, generate, inversion playground),
  a package with one module per panel; its docstring says how to add a panel.

The explorer is not imported here: ``from pyoco_lab.viz import explorer`` loads it (with
ipywidgets, IPython and the training code), which scripts that only draw figures need not load.
"""

from pyoco_lab.media import save_video, tile_videos, to_uint8_frames
from pyoco_lab.viz.figures import (
    correlation_figure,
    correlation_figure_plotly,
    cosine_similarity_matrix,
    image_grid_figure,
    mean_by_distance,
    noise_frames_figure,
    plot_distance_curves,
    save_figure,
)
from pyoco_lab.viz.video import gif_bytes, video_grid, video_html

__all__ = [
    "correlation_figure",
    "correlation_figure_plotly",
    "cosine_similarity_matrix",
    "gif_bytes",
    "image_grid_figure",
    "mean_by_distance",
    "noise_frames_figure",
    "plot_distance_curves",
    "save_figure",
    "save_video",
    "tile_videos",
    "to_uint8_frames",
    "video_grid",
    "video_html",
]
