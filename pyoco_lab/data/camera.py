"""The lab's camera model: every rendered clip is a per-frame affine map from output coordinates to
source pixels, sampled bilinearly (``render``).

Used by the embedded dataset (:mod:`pyoco_lab.data.embedded`): photographs filmed by a virtual camera --
pans, zooms, slow rotations, parallax between two crops, a disc cut from the photo moving over it, a static
hand-held camera, each with a little smoothed hand-held jitter (``photo_camera``) -- and real videos seen
through a fixed random square crop (``render_video_clip``). Output coordinates (u, v) span [-1, 1]^2,
u right and v down; source pixel coordinates (x, y) span [0, W] x [0, H].
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "PHOTO_MOTIONS",
    "camera_window",
    "ease",
    "handheld_jitter",
    "layer_mask",
    "photo_camera",
    "render",
    "render_photo_clip",
    "render_video_clip",
]

PHOTO_MOTIONS = (
    "pan-left",
    "pan-right",
    "pan-up",
    "pan-down",
    "zoom-in",
    "zoom-out",
    "rotate",
    "parallax",
    "object",
    "static",
)


def render(
    images: torch.Tensor, affine: torch.Tensor, size: int, padding: str = "reflection"
) -> torch.Tensor:
    """Sample (F, C, size, size) frames from ``images`` (F or 1, C, H, W) in [0, 1].

    ``affine`` (F, 2, 3) maps output coordinates (u, v) in [-1, 1]^2 (u right, v down) to source
    pixel coordinates (x, y) with the image spanning [0, W] x [0, H]. ``padding``: what lies outside
    the source -- its mirror image (a photo filmed past its edge) or "zeros" (a cut-out's transparent
    surroundings).
    """
    frames = affine.shape[0]
    height, width = images.shape[-2:]
    to_normalised = torch.tensor([[2.0 / width, 0.0], [0.0, 2.0 / height]], dtype=affine.dtype)
    theta = to_normalised @ affine
    theta[:, :, 2] -= 1.0  # pixel 0 -> -1, pixel W -> +1 (align_corners=False convention)
    grid = F.affine_grid(theta, [frames, images.shape[1], size, size], align_corners=False)
    images = images.expand(frames, -1, -1, -1) if images.shape[0] == 1 else images
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def camera_window(cx, cy, side, angle) -> torch.Tensor:
    """Affine maps of a square camera window (centre, side in pixels, angle in radians) per frame."""
    cx, cy, side, angle = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (cx, cy, side, angle))
    half = side / 2
    cos, sin = torch.cos(angle) * half, torch.sin(angle) * half
    row_x = torch.stack([cos, -sin, cx], dim=-1)
    row_y = torch.stack([sin, cos, cy], dim=-1)
    return torch.stack([row_x, row_y], dim=-2).float()


def ease(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Progress 0 -> 1 over the clip with a mild random acceleration (cameras rarely move uniformly)."""
    t = np.linspace(0.0, 1.0, frames)
    return t + rng.uniform(-0.35, 0.35) * t * (1 - t)


def handheld_jitter(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """Smoothed hand-held shake, (frames, 2) in pixels."""
    walk = np.cumsum(rng.normal(size=(frames + 4, 2)), axis=0)
    kernel = np.ones(5) / 5
    smooth = np.stack([np.convolve(walk[:, i], kernel, mode="valid") for i in range(2)], axis=-1)
    smooth -= smooth.mean(axis=0)
    return amplitude * smooth / max(float(np.abs(smooth).max()), 1e-6)


def photo_camera(motion: str, rng: np.random.Generator, width: int, height: int, frames: int):
    """(main camera affine, optional second layer (affine, mask kind, mask params))."""
    short = min(width, height)
    p = ease(rng, frames)
    side = rng.uniform(0.45, 0.75) * short
    shake = handheld_jitter(rng, frames, rng.uniform(0.003, 0.012) * side)

    def place(extent_x: float, extent_y: float) -> tuple[float, float]:
        # A window centre such that the window (plus its travel) stays inside the photo.
        x = rng.uniform(extent_x, max(width - extent_x, extent_x))
        y = rng.uniform(extent_y, max(height - extent_y, extent_y))
        return x, y

    angle = np.zeros(frames)
    sides = np.full(frames, side)
    layer = None
    if motion.startswith("pan-"):
        travel = rng.uniform(0.25, 0.6) * side
        horizontal = motion in ("pan-left", "pan-right")
        room = (width if horizontal else height) - side
        travel = min(travel, max(room, 0.0))
        sign = -1.0 if motion in ("pan-left", "pan-up") else 1.0
        x0, y0 = place(
            side / 2 + (travel / 2 if horizontal else 0), side / 2 + (0 if horizontal else travel / 2)
        )
        offset = sign * travel * (p - 0.5)
        cx = x0 + (offset if horizontal else 0 * p)
        cy = y0 + (0 * p if horizontal else offset)
    elif motion in ("zoom-in", "zoom-out"):
        ratio = rng.uniform(0.55, 0.8)
        scale = 1 - (1 - ratio) * p if motion == "zoom-in" else ratio + (1 - ratio) * p
        sides = side * scale
        x0, y0 = place(side / 2, side / 2)
        cx, cy = x0 + 0 * p, y0 + 0 * p
    elif motion == "rotate":
        side = rng.uniform(0.4, 0.6) * short
        sides = np.full(frames, side)
        turn = math.radians(rng.uniform(8, 25)) * rng.choice([-1.0, 1.0])
        angle = turn * (p - 0.5)
        x0, y0 = place(side / math.sqrt(2), side / math.sqrt(2))  # the turning window stays inside
        cx, cy = x0 + 0 * p, y0 + 0 * p
    elif motion == "parallax":
        # Far layer drifts slowly; a near layer (another crop of the same photo, magnified) slides
        # 2.5-4x faster across the lower part of the frame, as with a sideways-moving camera.
        far = rng.uniform(0.05, 0.15) * side * rng.choice([-1.0, 1.0])
        x0, y0 = place(side / 2 + abs(far) / 2, side / 2)
        cx, cy = x0 + far * (p - 0.5), y0 + 0 * p
        near_side = side * rng.uniform(0.5, 0.8)
        near = far * rng.uniform(2.5, 4.0) * near_side / side
        nx, ny = place(near_side / 2 + abs(near) / 2, near_side / 2)
        near_affine = camera_window(
            nx + near * (p - 0.5), ny + 0 * p, np.full(frames, near_side), np.zeros(frames)
        )
        layer = (near_affine, "horizon", rng.uniform(0.0, 0.4))
    elif motion == "object":
        # A disc cut from another part of the photo crosses the frame over a slowly drifting background.
        drift = rng.uniform(0.0, 0.08) * side * rng.choice([-1.0, 1.0])
        x0, y0 = place(side / 2 + abs(drift) / 2, side / 2)
        cx, cy = x0 + drift * (p - 0.5), y0 + 0 * p
        radius = rng.uniform(0.25, 0.4)  # in output units ([-1, 1] spans the frame)
        start, end = rng.uniform(-0.6, 0.6, size=2), rng.uniform(-0.6, 0.6, size=2)
        heading = rng.uniform(0, 2 * math.pi)
        start = start + 0.5 * np.array([math.cos(heading), math.sin(heading)])
        end = end - 0.5 * np.array([math.cos(heading), math.sin(heading)])
        centres = start[None] + (end - start)[None] * p[:, None]  # (F, 2) object centre in output units
        patch_side = rng.uniform(0.2, 0.35) * short
        px, py = place(patch_side / 2, patch_side / 2)
        spin = math.radians(rng.uniform(-20, 20)) * p
        # output (u, v) -> object-local ((u, v) - centre) / radius -> photo pixel via the patch window
        patch = camera_window(np.full(frames, px), np.full(frames, py), np.full(frames, patch_side), spin)
        linear = patch[:, :, :2] / radius
        shift = patch[:, :, 2] - torch.einsum("fij,fj->fi", linear, torch.as_tensor(centres).float())
        layer = (torch.cat([linear, shift[..., None]], dim=-1), "disc", (centres, radius))
    elif motion == "static":
        x0, y0 = place(side / 2, side / 2)
        cx, cy = x0 + 0 * p, y0 + 0 * p
    else:
        raise ValueError(f"unknown photo motion {motion!r}; choose one of {PHOTO_MOTIONS}")
    cx = np.asarray(cx) + shake[:, 0]
    cy = np.asarray(cy) + shake[:, 1]
    return camera_window(cx, cy, sides, angle), layer


def layer_mask(kind: str, params, frames: int, size: int) -> torch.Tensor:
    """Soft alpha mask (F, 1, size, size) of a second layer."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    soft = 4.0 / size  # about two output pixels of antialiased edge
    if kind == "horizon":
        mask = torch.sigmoid((v - float(params)) / soft)[None].expand(frames, -1, -1)
    else:
        centres, radius = params
        centres = torch.as_tensor(centres, dtype=torch.float32)
        dist = torch.sqrt(
            (u[None] - centres[:, 0, None, None]) ** 2 + (v[None] - centres[:, 1, None, None]) ** 2
        )
        mask = torch.sigmoid((radius - dist) / soft)
    return mask[:, None]


def render_photo_clip(
    image: torch.Tensor, motion: str, rng: np.random.Generator, size: int, frames: int = 16
) -> torch.Tensor:
    """One animated-photo clip (F, 3, size, size) in [0, 1] from ``image`` (1, 3, H, W)."""
    height, width = image.shape[-2:]
    affine, layer = photo_camera(motion, rng, width, height, frames)
    clip = render(image, affine, size)
    if layer is not None:
        near_affine, kind, params = layer
        near = render(image, near_affine, size)
        mask = layer_mask(kind, params, frames, size)
        clip = mask * near + (1 - mask) * clip
    return clip


def render_video_clip(frames: torch.Tensor, rng: np.random.Generator, size: int) -> torch.Tensor:
    """A fixed random square crop (55-100% of the short side) of (F, 3, H, W) frames in [0, 1]."""
    count, _, height, width = frames.shape
    side = rng.uniform(0.55, 1.0) * min(height, width)
    cx = rng.uniform(side / 2, width - side / 2)
    cy = rng.uniform(side / 2, height - side / 2)
    affine = camera_window(np.full(count, cx), np.full(count, cy), np.full(count, side), np.zeros(count))
    return render(frames, affine, size)
