"""Figures, inline video and the interactive ipywidgets explorer.

- :mod:`pyoco_lab.viz.video` -- ``save_video``, ``video_html``, ``video_grid`` (synced tiles), ``gif_bytes``.
- :mod:`pyoco_lab.viz.figures` -- correlation heatmaps and correlation-vs-distance curves
  (matplotlib for static PNGs, plotly for the live explorer).
- :mod:`pyoco_lab.viz.explorer` -- ``Explorer`` (tabs: noise prior, generate, inversion playground).

The explorer is imported lazily: it needs ipywidgets/plotly, which scripts need not load.
"""

from pyoco_lab.viz.figures import (
    correlation_figure,
    correlation_figure_plotly,
    cosine_similarity_matrix,
    mean_by_distance,
    noise_frames_figure,
    plot_distance_curves,
    save_figure,
)
from pyoco_lab.viz.video import gif_bytes, save_video, tile_videos, to_uint8_frames, video_grid, video_html

__all__ = [
    "correlation_figure",
    "correlation_figure_plotly",
    "cosine_similarity_matrix",
    "gif_bytes",
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
