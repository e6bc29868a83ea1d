"""Video and image files: tensors -> uint8 frames -> GIF / MP4 / PNG, written atomically.

The lowest layer of presentation, shared by training (periodic sample files), commands and the
viz layer (inline players in notebooks and the explorer), so that training never depends on viz.

Videos follow the house layout ``(frames, channels, height, width)`` (a single video of a
``(batch, frames, channels, height, width)`` tensor), as float tensors/arrays in ``value_range``
(default [-1, 1], the model's range) or as uint8. The encoders are:

- GIF (Pillow through imageio): no ffmpeg, loops by itself, and survives headless execution and
  static notebook viewers (GitHub, nbviewer) as a plain ``<img>`` -- the default everywhere.
- MP4 (H.264 through imageio-ffmpeg's bundled binary): smaller files for long or large videos.

Several videos "looping in sync" are tiled into one video (:func:`tile_videos`), so no JavaScript
has to keep separate players aligned: they are literally the same frames.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import torch
from einops import rearrange

from pyoco_lab.fileio import publish_file

VIDEO_SUFFIXES = (".gif", ".mp4")


def to_uint8_frames(video, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Convert a video (F, C, H, W) with C in {1, 3} to uint8 frames (F, H, W, 3) for encoders.

    Float input is mapped linearly from ``value_range`` to [0, 255] and clipped (noise therefore
    needs a wide range such as (-3, 3)); uint8 input is taken as is.
    """
    array = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    if array.ndim == 5 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise ValueError(
            f"a video must be (frames, channels, height, width) with 1 or 3 channels, got shape "
            f"{array.shape}; index one video out of a batch first, e.g. videos[0]"
        )
    if array.shape[0] < 1:
        raise ValueError("a video needs at least one frame")
    if array.dtype != np.uint8:
        low, high = value_range
        if not high > low:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
        scaled = (array.astype(np.float64) - low) / (high - low) * 255.0
        array = np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).round().astype(np.uint8)
    frames = rearrange(array, "f c h w -> f h w c")
    if frames.shape[-1] == 1:  # encoders want RGB; grey is the same value in every channel
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames)


def encode_video(frames: np.ndarray, fmt: str = "gif", fps: float = 8.0) -> bytes:
    """Encode uint8 frames (F, H, W, 3) as GIF or MP4 bytes; GIFs loop forever."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    fmt = fmt.lower().lstrip(".")
    if fmt == "gif":
        # Pillow's GIF writer takes the frame duration in milliseconds; loop=0 means forever.
        return iio.imwrite("<bytes>", frames, extension=".gif", duration=1000.0 / fps, loop=0)
    if fmt == "mp4":
        return _encode_mp4(frames, fps)
    raise ValueError(f"unknown video format {fmt!r}; use 'gif' or 'mp4'")


def _encode_mp4(frames: np.ndarray, fps: float) -> bytes:
    # H.264 with yuv420p needs even sides: pad by repeating the last row/column.
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "video.mp4")
        # macro_block_size=1 keeps tiny (e.g. 32 px) videos at their size instead of resizing them.
        writer = imageio.get_writer(
            path, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=1, quality=8
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
        return Path(path).read_bytes()


def save_video(
    video, path: str | os.PathLike, *, fps: float = 8.0, value_range: tuple[float, float] = (-1.0, 1.0)
) -> Path:
    """Write a video (F, C, H, W) to ``path`` (.gif or .mp4, by suffix) atomically; return the path.

    The file is written to a temporary sibling and moved into place, so an interrupted write
    never replaces a good file with half a video.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot save a video as {path.name!r}; use a .gif or .mp4 file name")
    data = encode_video(to_uint8_frames(video, value_range), suffix, fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as f:
        f.write(data)
        tmp = f.name
    publish_file(tmp, path)
    return path


def tile_videos(videos: Sequence, *, padding: int = 2, value_range=(-1.0, 1.0)) -> np.ndarray:
    """Place videos side by side in one uint8 video (F, H, W_total, 3), so they loop in sync.

    All videos need the same number of frames and the same height; ``padding`` white columns
    separate them.
    """
    if len(videos) == 0:
        raise ValueError("tile_videos needs at least one video")
    frames = [to_uint8_frames(v, value_range) for v in videos]
    shapes = {f.shape[:2] for f in frames}
    if len(shapes) != 1:
        raise ValueError(
            f"videos to tile need the same (frames, height), got {sorted(shapes)}; "
            "sample them with the same num_frames and resolution"
        )
    num_frames, height = frames[0].shape[:2]
    gap = np.full((num_frames, height, padding, 3), 255, dtype=np.uint8)
    pieces = []
    for i, f in enumerate(frames):
        if i and padding:
            pieces.append(gap)
        pieces.append(f)
    return np.concatenate(pieces, axis=2)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of one uint8 image (H, W, 3)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"an image must be uint8 (height, width, 3), got {rgb.dtype} {rgb.shape}")
    return iio.imwrite("<bytes>", rgb, extension=".png")


def save_image(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one uint8 image (H, W, 3) to ``path`` (.png) atomically; return the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"cannot save an image as {path.name!r}; use a .png file name")
    data = encode_png(rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as f:
        f.write(data)
        tmp = f.name
    publish_file(tmp, path)
    return path


def save_side_by_side(videos, path_stem: str | os.PathLike, *, suffixes=(".gif", ".mp4")) -> list[Path]:
    """Save videos (N, F, C, H, W) in [-1, 1] side by side, looping in sync, as one file per suffix.

    Single-frame "videos" (images) become one PNG. An optional format that fails (e.g. no H.264
    encoder on the machine) is reported and skipped, so a long job never dies over a preview file.
    """
    path_stem = Path(path_stem)
    grid = tile_videos(list(videos))  # uint8 (F, H, N*W + padding, 3)
    if grid.shape[0] == 1:
        return [save_image(grid[0], path_stem.with_suffix(".png"))]
    video = rearrange(grid, "f h w c -> f c h w")
    written = []
    for suffix in suffixes:
        try:
            written.append(save_video(video, path_stem.with_suffix(suffix)))
        except Exception as error:  # deliberately broad: encoders fail in many ways; a preview is optional
            print(f"warning: could not write {path_stem.name}{suffix}: {error}")
    return written


def stack_images(images: Sequence[np.ndarray], *, padding: int = 4) -> np.ndarray:
    """uint8 images (H_i, W_i, 3) one below the other, left-aligned on white, ``padding`` rows apart."""
    if len(images) == 0:
        raise ValueError("stack_images needs at least one image")
    width = max(image.shape[1] for image in images)
    rows = [
        np.pad(im, ((0, padding), (0, width - im.shape[1]), (0, 0)), constant_values=255) for im in images
    ]
    return np.concatenate(rows)[: -padding or None]
