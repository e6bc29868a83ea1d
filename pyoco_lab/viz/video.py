"""Show short videos (samples, noise "videos", real clips) inline: notebooks, HTML, widgets.

Encoding and files live one layer down, in :mod:`pyoco_lab.media` (training writes its sample
files with it too); this module turns encoded videos into self-contained HTML that plays after
headless execution and in static viewers. Videos are ``(frames, channels, height, width)`` in
``value_range`` (default [-1, 1]) or uint8; several videos side by side are tiled into one GIF so
they loop in sync without any JavaScript.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import numpy as np

from pyoco_lab.media import encode_video, tile_videos, to_uint8_frames


def _img_tag(data: bytes, mime: str, width: int, title: str = "") -> str:
    # Pixelated upscaling keeps 32 px samples crisp instead of blurring them.
    source = base64.b64encode(data).decode("ascii")
    title_attr = f' title="{html.escape(title)}"' if title else ""
    return (
        f'<img src="data:{mime};base64,{source}" width="{width}"{title_attr} '
        'style="image-rendering: pixelated; image-rendering: crisp-edges;"/>'
    )


def video_html(
    video,
    *,
    fps: float = 8.0,
    scale: int = 4,
    fmt: str = "gif",
    caption: str = "",
    value_range=(-1.0, 1.0),
) -> str:
    """Self-contained HTML that plays a video (F, C, H, W) inline, looping, at ``scale`` x its size.

    GIF (default) becomes an ``<img>``; MP4 a muted, autoplaying, looping ``<video>``. Both embed
    the data, so the notebook shows the video after headless execution too. Display it with
    ``IPython.display.HTML(video_html(...))``.
    """
    frames = to_uint8_frames(video, value_range)
    width = frames.shape[2] * scale
    data = encode_video(frames, fmt, fps)
    if fmt.lower().lstrip(".") == "mp4":
        source = base64.b64encode(data).decode("ascii")
        body = (
            f'<video width="{width}" autoplay loop muted playsinline controls '
            'style="image-rendering: pixelated;">'
            f'<source src="data:video/mp4;base64,{source}" type="video/mp4"></video>'
        )
    else:
        body = _img_tag(data, "image/gif", width, caption)
    if caption:
        body = f'<figure style="margin:0">{body}<figcaption>{html.escape(caption)}</figcaption></figure>'
    return body


def video_grid(
    videos: Sequence,
    labels: Sequence[str] | None = None,
    *,
    fps: float = 8.0,
    scale: int = 4,
    padding: int = 2,
    title: str = "",
    value_range=(-1.0, 1.0),
) -> str:
    """HTML of several videos side by side, looping in sync (one tiled GIF), labelled above.

    ``videos`` is a sequence of (F, C, H, W) videos with equal frames and height, or a batch
    tensor (N, F, C, H, W).
    """
    videos = list(videos)
    if labels is not None and len(labels) != len(videos):
        raise ValueError(f"got {len(labels)} labels for {len(videos)} videos; pass one label per video")
    tiled = tile_videos(videos, padding=padding, value_range=value_range)
    data = encode_video(tiled, "gif", fps)
    tile_width = to_uint8_frames(videos[0], value_range).shape[2] * scale
    gap = padding * scale
    parts = []
    if title:
        parts.append(f"<div><b>{html.escape(title)}</b></div>")
    if labels is not None:
        cells = "".join(
            f'<div style="width:{tile_width}px;margin-right:{gap}px;text-align:center;'
            f'font-family:monospace;font-size:12px">{html.escape(str(label))}</div>'
            for label in labels
        )
        parts.append(f'<div style="display:flex">{cells}</div>')
    parts.append(_img_tag(data, "image/gif", tiled.shape[2] * scale, title))
    return "<div>" + "".join(parts) + "</div>"


def video_table(
    rows: Sequence[Sequence],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    fps: float = 8.0,
    scale: int = 3,
    padding: int = 2,
    title: str = "",
    value_range=(-1.0, 1.0),
) -> str:
    """HTML of a table of videos -- ``rows`` of (F, C, H, W) videos, all the same shape -- tiled into *one*
    GIF so every clip loops in sync, with each row's label beside it and each column's above."""
    if len(rows) != len(row_labels) or not rows:
        raise ValueError(f"got {len(row_labels)} row labels for {len(rows)} rows; pass one label per row")
    if any(len(row) != len(column_labels) for row in rows):
        raise ValueError(f"every row needs {len(column_labels)} videos, one per column label")
    strips = [tile_videos(list(row), padding=padding, value_range=value_range) for row in rows]
    frames, height, width = strips[0].shape[:3]
    gap = np.full((frames, padding, width, 3), 255, dtype=np.uint8)
    table = np.concatenate([part for i, s in enumerate(strips) for part in ((gap, s) if i else (s,))], axis=1)
    data = encode_video(table, "gif", fps)
    tile = to_uint8_frames(rows[0][0], value_range).shape[2] * scale
    row_height, gap_px = height * scale, padding * scale
    head = "".join(
        f'<div style="width:{tile}px;margin-right:{gap_px}px;text-align:center">{html.escape(str(c))}</div>'
        for c in column_labels
    )
    labels = "".join(
        f'<div style="height:{row_height}px;margin-bottom:{gap_px}px;display:flex;align-items:center;'
        f'justify-content:flex-end;text-align:right">{html.escape(str(label))}</div>'
        for label in row_labels
    )
    style = "font-family:monospace;font-size:12px"
    return (
        f'<div style="{style}">'
        + (f"<div><b>{html.escape(title)}</b></div>" if title else "")
        + '<div style="display:flex"><div style="width:320px;margin-right:8px"></div>'
        + f'<div style="display:flex">{head}</div></div>'
        + f'<div style="display:flex"><div style="width:320px;margin-right:8px">{labels}</div>'
        + _img_tag(data, "image/gif", table.shape[2] * scale, title)
        + "</div></div>"
    )


def gif_bytes(video, *, fps: float = 8.0, value_range=(-1.0, 1.0)) -> bytes:
    """GIF bytes of a video (F, C, H, W), e.g. for an ``ipywidgets.Image(format="gif")``."""
    return encode_video(to_uint8_frames(video, value_range), "gif", fps)
