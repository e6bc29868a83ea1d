"""Real objects moving over real scenes, with each clip's exact optical flow (issue #40).

The raw material is a folder of RGBA cut-outs: by default Debian's ``tuxpaint-stamps-default`` (Tux Paint's
stamps, GPL-2: several hundred photographed animals, fruit, flowers, vehicles and buildings with alpha
masks, beside drawings and symbols), or any folder of a user's own RGBA PNGs. Each cut-out is one
*identity*; its category is its first sub-folder (Tux Paint's "animals", "food", ...).

**Photograph or drawing** (``texture_statistics``, ``CutOut.kind``): a photograph's opaque pixels carry
sensor noise and shading, so most neighbouring pixels differ by a little (0.5 to 12 grey levels of 255) and
few are exactly equal; a drawing is flat colour (exactly equal neighbours) broken by hard edges. Over Tux
Paint's 796 stamps the share of "small, non-zero" differences is bimodal (272 below 0.1, 378 at 0.6 or more).
The rule: not under a ``cartoon`` folder (Tux Paint's own label: its painted cartoons are as textured as
photographs), texture >= 0.4 and at most 20% exactly equal neighbours (more is flat colour; a photograph's
clipped white patches reach 5-19%). By eye, over a contact sheet of all 383 Tux Paint stamps the rule keeps
(at least ``MIN_OPAQUE_PIXELS``), 23 are drawings -- Easter and Christmas ornaments, smileys, flat road
signs, a menorah, a button: ``TUXPAINT_DRAWN_BY_EYE`` labels them, leaving 360 photographs.

**A clip** (``ObjectScene``): a background photograph filmed by the lab's camera model
(:mod:`pyoco_lab.data.camera`: static, pan, zoom or rotate, with hand-held jitter), and one to three
cut-outs placed in that world, each with its own path -- crossing the frame (entering and leaving it),
drifting, approaching, receding or turning -- drawn back to front, so they occlude one another. Every
layer is a per-frame affine map from output coordinates to its source's pixels, so where each visible
point goes next is known exactly: ``ObjectScene.flow`` is the forward optical flow of frame t to
t + 1 (pixels, x right, y down) of the top-most layer at each pixel, the "exact optical flow" the
warped-noise prior and a warping-error measure will use (Chang et al., *How I Warped Your Noise*, ICLR
2024, warp noise along such flow).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pyoco_lab.data.camera import ease, photo_camera, render

__all__ = [
    "CAMERA_MOTIONS",
    "OBJECT_MOTIONS",
    "MIN_OPAQUE_PIXELS",
    "PHOTO_FLAT_MAX",
    "PHOTO_TEXTURE_MIN",
    "TUXPAINT_DRAWN_BY_EYE",
    "TUXPAINT_LICENCE",
    "TUXPAINT_STAMPS",
    "CutOut",
    "ObjectScene",
    "cutout_kind",
    "find_cutouts",
    "layer_flow",
    "load_cutout",
    "plan_object_scene",
    "texture_statistics",
]

TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
TUXPAINT_LICENCE = "GPL-2.0-or-later (Tux Paint stamps, Bill Kendrick; Debian tuxpaint-stamps-default)"
PHOTO_TEXTURE_MIN = 0.4
PHOTO_FLAT_MAX = 0.2
MIN_OPAQUE_PIXELS = 600  # about 25 x 25: smaller cut-outs would be magnified into blur
# Stamps the rule calls photographs that are drawings, by eye (contact sheet of every stamp it keeps,
# tuxpaint-stamps-default 2022.06.04, reviewed 2026-12-07).
TUXPAINT_DRAWN_BY_EYE = frozenset(
    {
        "clothes/button.png",
        "seasonal/christmas/stocking.png",
        "seasonal/easter/bluebird.png",
        "seasonal/easter/bunny-egg.png",
        "seasonal/easter/bunny-head.png",
        "seasonal/easter/bunny.png",
        "seasonal/easter/butterfly.png",
        "seasonal/easter/chick.png",
        "seasonal/easter/daffodil.png",
        "seasonal/hanukkah/menorah.png",
        "symbols/faces/excited.png",
        "symbols/faces/happy.png",
        "symbols/faces/mad.png",
        "symbols/faces/sad.png",
        "town/roadsigns/dead_end_sign.png",
        "town/roadsigns/no_entry_sign.png",
        "town/roadsigns/school_sign.png",
        "town/roadsigns/toilets.png",
        "town/roadsigns/xing_ped.png",
        "town/roadsigns/xing_school.png",
        "town/roadsigns/xing_school_mirror.png",
        "vehicles/emergency/sedan_police.png",
        "vehicles/emergency/sedan_police_mirror.png",
    }
)
# The camera paths of v1 that film a single layer (parallax and "object" add layers of their own).
CAMERA_MOTIONS = ("static", "pan-left", "pan-right", "pan-up", "pan-down", "zoom-in", "zoom-out", "rotate")
OBJECT_MOTIONS = ("cross", "drift", "approach", "recede", "turn")


# ----------------------------------------------------------------------------------------------
# The cut-outs: found, classified, loaded.


@dataclass(frozen=True)
class CutOut:
    """One RGBA cut-out of a folder: ``relpath`` (its identity), ``category`` (first sub-folder),
    ``description`` (first line of NAME.txt beside it, if any), its texture statistics and ``kind``
    ("photo" or "drawing", by :func:`cutout_kind`)."""

    relpath: str
    category: str
    description: str
    texture: float
    flat: float
    opaque_pixels: int
    kind: str

    @property
    def usable(self) -> bool:
        """A photograph large enough to film."""
        return self.kind == "photo" and self.opaque_pixels >= MIN_OPAQUE_PIXELS

    @property
    def name(self) -> str:
        return Path(self.relpath).stem


def texture_statistics(rgba: np.ndarray) -> tuple[float, float, int]:
    """(texture, flat, opaque pixels) of a uint8 (H, W, 4) image, over pairs of neighbouring opaque
    pixels: texture, the share whose grey levels differ by more than 0.5 and less than 12 of 255 (about
    0.6-1 for a photograph, near 0 for flat-colour drawings); flat, the share exactly equal in all three
    colours (a drawing's flat fills; see the module's docstring)."""
    colour = rgba[..., :3].astype(np.float32)
    grey = colour.mean(-1)
    opaque = rgba[..., 3] > 200
    both = opaque[:-1, :-1] & opaque[1:, :-1] & opaque[:-1, 1:]
    if not both.any():
        return 0.0, 1.0, int(opaque.sum())
    dx = np.abs(np.diff(grey, axis=1))[:-1, :]
    dy = np.abs(np.diff(grey, axis=0))[:, :-1]
    small = ((dx > 0.5) & (dx < 12)) | ((dy > 0.5) & (dy < 12))
    same_x = (np.diff(colour, axis=1) == 0).all(-1)[:-1, :]
    same_y = (np.diff(colour, axis=0) == 0).all(-1)[:, :-1]
    return float(small[both].mean()), float((same_x & same_y)[both].mean()), int(opaque.sum())


def cutout_kind(relpath: str, texture: float, flat: float, drawn_by_eye=frozenset()) -> str:
    """ "photo" or "drawing" by the module's rule; ``drawn_by_eye``: paths reviewed as drawings."""
    drawn = "cartoon" in Path(relpath).parts or relpath in drawn_by_eye
    return "drawing" if drawn or texture < PHOTO_TEXTURE_MIN or flat > PHOTO_FLAT_MAX else "photo"


def _read_rgba(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def _description(png: Path) -> str:
    text = png.with_suffix(".txt")
    if not text.is_file():
        return ""
    first = text.read_text(encoding="utf-8", errors="replace").splitlines()
    return first[0].strip() if first else ""


def missing_library_message() -> str:
    return (
        f"no cut-out objects: {TUXPAINT_STAMPS} does not exist; install them with "
        "`apt-get install tuxpaint-stamps-default` (Debian/Ubuntu, ~160 MB) or pass --objects DIR "
        "(a folder of RGBA PNGs)"
    )


def find_cutouts(folder: str | os.PathLike | None = None) -> tuple[Path, list[CutOut]]:
    """(the folder, every RGBA PNG under it as a :class:`CutOut`, sorted by path). ``folder`` None:
    Tux Paint's stamps where installed. Raises FileNotFoundError with the fix when there is none."""
    root = Path(folder) if folder is not None else TUXPAINT_STAMPS
    if not root.is_dir():
        if folder is None:
            raise FileNotFoundError(missing_library_message())
        raise FileNotFoundError(f"--objects {root}: no such folder (a folder of RGBA PNG cut-outs)")
    reviewed = TUXPAINT_DRAWN_BY_EYE if root.resolve() == TUXPAINT_STAMPS.resolve() else frozenset()
    found = []
    for png in sorted(root.rglob("*.png")):
        rel = png.relative_to(root).as_posix()
        texture, flat, opaque = texture_statistics(_read_rgba(png))
        category = rel.split("/")[0] if "/" in rel else "objects"
        kind = cutout_kind(rel, texture, flat, reviewed)
        found.append(CutOut(rel, category, _description(png), texture, flat, opaque, kind))
    if not found:
        raise FileNotFoundError(f"{root} holds no .png cut-outs (RGBA PNGs with transparent surroundings)")
    return root, found


def load_cutout(path: str | os.PathLike, side: int = 192) -> torch.Tensor:
    """(4, side, side) premultiplied RGBA in [0, 1]: trimmed to its opaque part, centred on a
    transparent square (so the object keeps its shape whatever the path turns it), then resized."""
    rgba = _read_rgba(Path(path))
    ys, xs = np.nonzero(rgba[..., 3] > 0)
    if len(ys) == 0:
        raise ValueError(f"{path} is fully transparent: nothing to cut out")
    crop = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    height, width = crop.shape[:2]
    square = np.zeros((max(height, width),) * 2 + (4,), dtype=np.uint8)
    top, left = (square.shape[0] - height) // 2, (square.shape[1] - width) // 2
    square[top : top + height, left : left + width] = crop
    image = torch.from_numpy(square).permute(2, 0, 1).float()[None] / 255
    image = F.interpolate(image, size=(side, side), mode="bilinear", antialias=True, align_corners=False)[0]
    image = image.clamp(0, 1)
    return torch.cat([image[:3] * image[3:], image[3:]])  # premultiplied: edges blend without halos


# ----------------------------------------------------------------------------------------------
# A scene: layers with per-frame affine maps, their pixels and their exact flow.


def _homogeneous(affine: torch.Tensor) -> torch.Tensor:
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=affine.dtype).expand(affine.shape[0], 1, 3)
    return torch.cat([affine, bottom], dim=1)


def _output_grid(size: int) -> torch.Tensor:
    """(size, size, 3) homogeneous output coordinates (u, v, 1) of the pixel centres."""
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([u, v, torch.ones_like(u)], dim=-1)


def layer_flow(affine: torch.Tensor, size: int) -> torch.Tensor:
    """Forward flow (F - 1, 2, size, size) in output pixels of a layer filmed by ``affine`` (F, 2, 3:
    output -> source): the point seen at pixel p of frame t is at source s = A_t p and is seen in frame
    t + 1 at A_{t+1}^-1 s. Exact for any affine path (pan, zoom, rotation, shear)."""
    matrices = _homogeneous(affine.double())
    to_next = torch.linalg.inv(matrices[1:]) @ matrices[:-1]  # (F - 1, 3, 3): frame t -> frame t + 1
    grid = _output_grid(size)
    moved = torch.einsum("fij,hwj->fhwi", to_next, grid)[..., :2]
    flow = (moved - grid[None, ..., :2]) * (size / 2)  # output units -> pixels
    return flow.permute(0, 3, 1, 2).float()


@dataclass
class ObjectScene:
    """A background photo, its camera path, and cut-outs with theirs (back to front).

    ``camera`` (F, 2, 3) maps output coordinates to background pixels; ``object_affines[i]`` maps them
    to cut-out i's pixels (its world placement composed with the camera, so the camera moves objects
    and background alike)."""

    background: torch.Tensor  # (1, 3, H, W) in [0, 1]
    camera: torch.Tensor
    cutouts: list[torch.Tensor]  # (4, S, S) premultiplied RGBA
    object_affines: list[torch.Tensor]

    def layers(self, size: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(background frames (F, 3, size, size), each object's premultiplied RGBA frames)."""
        frames = render(self.background, self.camera, size)
        objects = [
            render(cutout[None], affine, size, padding="zeros")
            for cutout, affine in zip(self.cutouts, self.object_affines, strict=True)
        ]
        return frames, objects

    def frames(self, size: int) -> torch.Tensor:
        """(F, 3, size, size) in [0, 1]: the objects composited over the background, back to front."""
        clip, objects = self.layers(size)
        for rgba in objects:
            clip = rgba[:, :3] + (1 - rgba[:, 3:]) * clip
        return clip.clamp(0, 1)

    def flow(self, size: int) -> torch.Tensor:
        """(F - 1, 2, size, size) forward flow in pixels: at each pixel, the flow of the top-most layer
        covering it in frame t (an object where its alpha is at least one half, else the background)."""
        flow = layer_flow(self.camera, size)
        _, objects = self.layers(size)
        for rgba, affine in zip(objects, self.object_affines, strict=True):
            covered = rgba[:-1, 3:] >= 0.5
            flow = torch.where(covered, layer_flow(affine, size), flow)
        return flow


def _object_path(motion: str, rng: np.random.Generator, frames: int):
    """(centres (F, 2), half-sizes (F,), angles (F,)) of an object in the first frame's output units."""
    p = ease(rng, frames)
    half = rng.uniform(0.22, 0.42)
    angle0 = math.radians(rng.uniform(-12, 12))
    halves, angles = np.full(frames, half), np.full(frames, angle0)
    heading = rng.uniform(0, 2 * math.pi)
    direction = np.array([math.cos(heading), math.sin(heading)])
    if motion == "cross":  # enters by one edge, leaves by the opposite one
        reach = 1.0 + half
        start = -direction * reach + rng.uniform(-0.3, 0.3, 2)
        end = direction * reach + rng.uniform(-0.3, 0.3, 2)
        centres = start[None] + (end - start)[None] * p[:, None]
    elif motion == "drift":
        middle = rng.uniform(-0.45, 0.45, 2)
        travel = rng.uniform(0.2, 0.5)
        centres = middle[None] + direction[None] * travel * (p[:, None] - 0.5)
    elif motion in ("approach", "recede"):
        middle = rng.uniform(-0.35, 0.35, 2)
        ratio = rng.uniform(1.4, 2.0)
        growth = 1 + (ratio - 1) * p if motion == "approach" else ratio - (ratio - 1) * p
        halves = half * growth / ratio**0.5
        centres = middle[None] + direction[None] * 0.15 * (p[:, None] - 0.5)
    elif motion == "turn":
        middle = rng.uniform(-0.4, 0.4, 2)
        angles = angle0 + math.radians(rng.uniform(20, 60)) * rng.choice([-1.0, 1.0]) * p
        centres = middle[None] + direction[None] * 0.2 * (p[:, None] - 0.5)
    else:
        raise ValueError(f"unknown object motion {motion!r}; choose one of {', '.join(OBJECT_MOTIONS)}")
    return centres, halves, angles


def _object_affine(camera: torch.Tensor, path, cutout_side: int) -> torch.Tensor:
    """(F, 2, 3) output -> cut-out pixels: output -> world (the camera of frame t), world -> the
    object's square (placed by ``path`` in the first frame's output units), -> its pixels."""
    centres, halves, angles = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in path)
    first = _homogeneous(camera[:1].double())[0]
    world_centres = (first[:2, :2] @ centres.T).T + first[:2, 2]
    world_scale = float(torch.linalg.det(first[:2, :2]).abs().sqrt())  # world pixels per output unit
    world_halves = halves * world_scale
    # world -> object-local [-1, 1]^2 -> cut-out pixels [0, S]^2: scale * R(-angle) * (w - centre) + S/2
    cos, sin = torch.cos(angles), torch.sin(angles)
    k = (cutout_side / 2) / world_halves
    rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2) * k[:, None, None]
    shift = cutout_side / 2 - torch.einsum("fij,fj->fi", rotation, world_centres)
    world_to_cutout = torch.cat([rotation, shift[..., None]], dim=-1)
    return (world_to_cutout @ _homogeneous(camera.double())).float()


def plan_object_scene(
    background: torch.Tensor,
    cutouts: list[torch.Tensor],
    rng: np.random.Generator,
    *,
    frames: int = 16,
    camera_motion: str | None = None,
    object_motions: list[str] | None = None,
) -> tuple[ObjectScene, dict]:
    """A scene of ``cutouts`` (back to front) over ``background`` (1, 3, H, W), with paths drawn from
    ``rng`` (or the given motions), and a record of what was drawn (camera and object motions)."""
    camera_motion = camera_motion or str(rng.choice(CAMERA_MOTIONS))
    if camera_motion not in CAMERA_MOTIONS:
        raise ValueError(f"camera motion {camera_motion!r}: choose one of {', '.join(CAMERA_MOTIONS)}")
    height, width = background.shape[-2:]
    camera, _ = photo_camera(
        camera_motion, rng, width, height, frames
    )  # CAMERA_MOTIONS: one layer, no second
    motions = object_motions or [str(rng.choice(OBJECT_MOTIONS)) for _ in cutouts]
    if len(motions) != len(cutouts):
        raise ValueError(f"{len(cutouts)} cut-outs but {len(motions)} object motions")
    affines = [
        _object_affine(camera, _object_path(m, rng, frames), c.shape[-1])
        for m, c in zip(motions, cutouts, strict=True)
    ]
    scene = ObjectScene(background, camera, list(cutouts), affines)
    return scene, {"camera": camera_motion, "objects": motions}
