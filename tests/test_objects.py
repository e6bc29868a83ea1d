"""Cut-out objects over real scenes (pyoco_lab.data.objects): finding and classifying cut-outs, loading
them, and the exact optical flow of every layer, checked by warping each frame's successor back onto it
against controls (no flow, the flow reversed, the flow of the wrong layer)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pyoco_lab import cli
from pyoco_lab.data import objects
from pyoco_lab.data.camera import camera_window, render
from pyoco_lab.data.embedded import held_out_photos
from pyoco_lab.data.object_set import (
    ObjectBuildConfig,
    ObjectClipsDataset,
    build_object_dataset,
    clips_across_categories,
    objects_dir,
)
from pyoco_lab.data.objects import (
    ObjectScene,
    cutout_kind,
    find_cutouts,
    layer_flow,
    load_cutout,
    plan_object_scene,
    texture_statistics,
)
from pyoco_lab.viz.flow import flow_to_rgb


def _photo_like(rng, size=64) -> np.ndarray:
    """An opaque disc of shaded, noisy colour (as a photograph's pixels are) on transparency."""
    y, x = np.mgrid[0:size, 0:size]
    shade = 90 + 80 * np.sin(x / 9.0) * np.cos(y / 13.0)
    rgb = np.stack([shade, shade * 0.8 + 20, 200 - shade * 0.5], -1) + rng.normal(0, 3, (size, size, 3))
    alpha = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 2.2) ** 2) * 255
    return np.dstack([rgb.clip(0, 255), alpha]).astype(np.uint8)


def _drawing_like(size=64) -> np.ndarray:
    """Flat colours with a hard black outline, as Tux Paint's drawn stamps and symbols are."""
    image = np.zeros((size, size, 4), dtype=np.uint8)
    image[8:56, 8:56] = (0, 0, 0, 255)
    image[10:54, 10:54] = (230, 200, 20, 255)
    image[20:40, 20:30] = (200, 30, 30, 255)
    return image


def _write(path, rgba) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)


def test_texture_separates_photographs_from_drawings():
    rng = np.random.default_rng(0)
    photo, photo_flat, photo_pixels = texture_statistics(_photo_like(rng))
    drawing, drawing_flat, _ = texture_statistics(_drawing_like())
    assert photo >= objects.PHOTO_TEXTURE_MIN > 0.1 > drawing
    assert photo_flat < objects.PHOTO_FLAT_MAX < drawing_flat
    assert photo_pixels > 2000


def test_a_users_folder_is_found_with_categories_descriptions_and_kinds(tmp_path):
    rng = np.random.default_rng(1)
    _write(tmp_path / "animals" / "cat.png", _photo_like(rng))
    (tmp_path / "animals" / "cat.txt").write_text("A cat.\nde.utf8=Eine Katze.\n")
    _write(tmp_path / "symbols" / "star.png", _drawing_like())
    _write(tmp_path / "loose.png", _photo_like(rng))
    root, found = find_cutouts(tmp_path)
    assert root == tmp_path
    assert [c.relpath for c in found] == ["animals/cat.png", "loose.png", "symbols/star.png"]
    assert [c.category for c in found] == ["animals", "objects", "symbols"]
    assert [c.kind for c in found] == ["photo", "photo", "drawing"]
    assert found[0].usable and not found[2].usable
    assert found[0].description == "A cat." and found[1].description == "" and found[0].name == "cat"


def test_missing_or_empty_folders_are_named_with_the_fix(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="--objects .*nowhere: no such folder"):
        find_cutouts(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="holds no .png cut-outs"):
        find_cutouts(tmp_path)
    monkeypatch.setattr(objects, "TUXPAINT_STAMPS", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError, match="apt-get install tuxpaint-stamps-default.*--objects DIR"):
        find_cutouts()


def test_a_cutout_is_trimmed_centred_square_and_premultiplied(tmp_path):
    image = np.zeros((40, 100, 4), dtype=np.uint8)
    image[10:30, 20:80] = (255, 128, 0, 255)  # a 60 x 20 opaque bar inside transparency
    _write(tmp_path / "bar.png", image)
    cutout = load_cutout(tmp_path / "bar.png", side=60)
    assert cutout.shape == (4, 60, 60)
    alpha = cutout[3]
    assert torch.all(cutout[:3] <= alpha + 1e-6)  # premultiplied
    rows = alpha.mean(dim=1) > 0.5
    assert alpha[30].min() > 0.99 and rows.sum() == 20 and rows[20:40].all()  # trimmed, centred
    _write(tmp_path / "empty.png", np.zeros((8, 8, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="fully transparent"):
        load_cutout(tmp_path / "empty.png")


def _warp_back(frames: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Frame t + 1 sampled at p + flow_t(p): frame t again wherever the flow is right."""
    _, _, height, width = frames.shape
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    grid = torch.stack([(xs + flow[:, 0]) / width * 2 - 1, (ys + flow[:, 1]) / height * 2 - 1], dim=-1)
    return F.grid_sample(frames[1:], grid, align_corners=False, padding_mode="border")


def _warp_error(frames: torch.Tensor, flow: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """Mean |frame t - frame t + 1 warped back| away from the border (and only ``where``, (F - 1, H, W))."""
    error = (_warp_back(frames, flow) - frames[:-1]).abs().mean(1)
    inside = torch.zeros_like(error, dtype=torch.bool)
    inside[:, 4:-4, 4:-4] = True
    if where is not None:
        inside &= where
    return float(error[inside].mean())


def _textured_photo(seed=0, size=192) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, size // 8, size // 8, generator=g)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_a_layers_flow_is_exact_for_pans_zooms_and_turns():
    frames = 6
    t = np.linspace(0, 1, frames)
    photo = _textured_photo()
    still = camera_window(
        np.full(frames, 96.0), np.full(frames, 96.0), np.full(frames, 100.0), np.zeros(frames)
    )
    assert torch.allclose(layer_flow(still, 32), torch.zeros(frames - 1, 2, 32, 32), atol=1e-5)
    # a pan of 2 source pixels a frame through a 100-pixel window is 2 * 64 / 100 output pixels a frame
    pan = camera_window(96 + 10 * t, np.full(frames, 96.0), np.full(frames, 100.0), np.zeros(frames))
    assert torch.allclose(layer_flow(pan, 64)[:, 0], torch.full((frames - 1, 64, 64), -1.28), atol=1e-4)
    for camera in (
        pan,
        camera_window(np.full(frames, 96.0), np.full(frames, 96.0), 100 - 20 * t, np.zeros(frames)),  # zoom
        camera_window(np.full(frames, 96.0), np.full(frames, 96.0), np.full(frames, 100.0), 0.3 * t),  # turn
    ):
        clip = render(photo, camera, 64)
        flow = layer_flow(camera, 64)
        right = _warp_error(clip, flow)
        assert right < 0.25 * _warp_error(clip, torch.zeros_like(flow))  # control: no motion
        assert right < 0.25 * _warp_error(clip, -flow)  # control: the motion reversed


def _opaque_square(colour, side=48) -> torch.Tensor:
    rgba = torch.zeros(4, side, side)
    rgba[:, 8:-8, 8:-8] = torch.tensor([*colour, 1.0])[:, None, None]
    g = torch.Generator().manual_seed(int(sum(colour) * 100))
    coarse = torch.rand(1, 1, 6, 6, generator=g)  # a smooth texture to follow (no detail finer than a pixel)
    texture = F.interpolate(coarse, size=(side - 16, side - 16), mode="bicubic", align_corners=False)[0]
    rgba[:3, 8:-8, 8:-8] *= 0.4 + 0.6 * texture.clamp(0, 1)
    return rgba


def test_a_scenes_flow_follows_each_object_over_the_moving_background():
    rng = np.random.default_rng(3)
    cutouts = [_opaque_square((1.0, 0.2, 0.2)), _opaque_square((0.2, 0.3, 1.0))]
    scene, record = plan_object_scene(
        _textured_photo(1),
        cutouts,
        rng,
        frames=8,
        camera_motion="pan-right",
        object_motions=["drift", "turn"],
    )
    assert record == {"camera": "pan-right", "objects": ["drift", "turn"]}
    clip, flow = scene.frames(64), scene.flow(64)
    assert clip.shape == (8, 3, 64, 64) and flow.shape == (7, 2, 64, 64)
    _, layers = scene.layers(64)
    on_object = (layers[0][:-1, 3] >= 0.5) | (layers[1][:-1, 3] >= 0.5)
    assert 0.05 < float(on_object.float().mean()) < 0.9
    background_only = ObjectScene(scene.background, scene.camera, [], []).flow(64)
    assert not torch.allclose(flow, background_only)  # the objects move their own way
    right = _warp_error(clip, flow)
    assert right < 0.25 * _warp_error(clip, torch.zeros_like(flow))  # control: no motion
    assert right < 0.25 * _warp_error(clip, -flow)  # control: the motion reversed
    # on the objects, against every pixel moved as the background (a flow that ignores the objects)
    on_object_right = _warp_error(clip, flow, on_object)
    assert on_object_right < 0.5 * _warp_error(clip, background_only, on_object)


def test_the_later_cutout_is_drawn_in_front_and_scenes_are_deterministic():
    red, blue = _opaque_square((1.0, 0.0, 0.0)), _opaque_square((0.0, 0.0, 1.0))
    photo = _textured_photo(2)
    frames = 4
    camera = camera_window(
        np.full(frames, 96.0), np.full(frames, 96.0), np.full(frames, 120.0), np.zeros(frames)
    )
    centred = objects._object_affine(
        camera, (np.zeros((frames, 2)), np.full(frames, 0.5), np.zeros(frames)), 48
    )
    front = ObjectScene(photo, camera, [red, blue], [centred, centred]).frames(32)[:, :, 16, 16]
    assert front[0, 2] > 0.5 > front[0, 0]  # blue, drawn last, covers red
    first = plan_object_scene(photo, [red, blue], np.random.default_rng(7))
    again = plan_object_scene(photo, [red, blue], np.random.default_rng(7))
    assert first[1] == again[1] and torch.equal(first[0].frames(32), again[0].frames(32))
    with pytest.raises(ValueError, match="camera motion 'parallax'"):
        plan_object_scene(photo, [red], np.random.default_rng(0), camera_motion="parallax")
    with pytest.raises(ValueError, match="unknown object motion 'fly'"):
        plan_object_scene(photo, [red], np.random.default_rng(0), object_motions=["fly"])


@pytest.mark.skipif(not objects.TUXPAINT_STAMPS.is_dir(), reason="tuxpaint-stamps-default is not installed")
def test_tux_paint_has_enough_photographed_objects_for_the_split():
    _, found = find_cutouts()
    photos = [c for c in found if c.usable]
    assert len(found) > 700 and len(photos) >= 350  # >= 300 training and >= 50 held-out identities
    assert not any("cartoon" in c.relpath for c in photos)
    kept_by_rule = {c.relpath for c in found if c.opaque_pixels >= objects.MIN_OPAQUE_PIXELS} - {
        c.relpath for c in found if cutout_kind(c.relpath, c.texture, c.flat) == "drawing"
    }
    assert objects.TUXPAINT_DRAWN_BY_EYE <= kept_by_rule  # the review lists only what the rule kept
    assert {"animals", "food", "plants", "vehicles", "town"} <= {c.category for c in photos}


def test_the_flow_colour_code_says_direction_by_hue_and_speed_by_saturation():
    flow = torch.zeros(2, 1, 4)
    flow[0, 0, 1], flow[1, 0, 2], flow[0, 0, 3] = 2.0, 2.0, -1.0  # still, right, down, slow left
    rgb = flow_to_rgb(flow)
    assert np.allclose(rgb[0, 0], 1.0)  # still: white
    assert np.allclose(rgb[0, 1], [1.0, 0.0, 0.0])  # right at full speed: red
    assert rgb[0, 2, 1] > rgb[0, 2, 2] and rgb[0, 2, 0] < 1.0  # down: green side of the wheel
    assert np.allclose(rgb[0, 3], [0.5, 1.0, 1.0])  # left at half the top speed: pale cyan


# ----------------------------------------------------------------------------------------------
# The object-motion set: built from a folder, split by identity, deterministic, flow stored.

TINY = ObjectBuildConfig(appearances_per_object=2, held_out_objects=4, cutout_side=32, render_size=32)


@pytest.fixture(scope="module")
def cutout_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cutouts")
    rng = np.random.default_rng(5)
    for i in range(14):
        _write(folder / ("animals" if i % 2 else "food") / f"thing{i:02d}.png", _photo_like(rng, 48))
    _write(folder / "symbols" / "star.png", _drawing_like())  # a drawing: never filmed
    (folder / "LICENSE.txt").write_text("CC0\n")
    return folder


def test_the_object_set_is_split_by_identity_and_deterministic(cutout_folder, tmp_path):
    manifest = build_object_dataset(tmp_path / "a", (16,), cutout_folder, progress=False, config=TINY)
    assert manifest["built_now"] and manifest["num_objects"] == {"train": 10, "test": 4}
    assert manifest["class_names"] == ["animals", "food"] and "LICENSE.txt" in manifest["cutout_licence"]
    index = json.loads((objects_dir(tmp_path / "a") / "index.json").read_text())
    assert "symbols/star.png" not in {c["relpath"] for c in index["cutouts"]}
    object_split = [c["split"] for c in index["cutouts"]]
    background_split = {b["name"]: b["split"] for b in index["backgrounds"]}
    for split, objs, background in zip(index["split"], index["objects"], index["background"], strict=True):
        assert {object_split[i] for i in objs} == {split} and background_split[background] == split
    assert set(index["split"]) == {"train", "test"}
    assert manifest["test_backgrounds"] == held_out_photos() == ["coffee", "coins", "flower"]  # v1's
    again = build_object_dataset(tmp_path / "a", (16,), cutout_folder, progress=False, config=TINY)
    assert not again["built_now"]  # found, not rebuilt
    more = build_object_dataset(tmp_path / "a", (8,), cutout_folder, progress=False, config=TINY)
    assert more["built_now"] and more["resolutions"] == [8, 16]  # a new size beside the old, both listed
    assert more["files"]["clips_16.npy"] == manifest["files"]["clips_16.npy"]  # the same clips again
    other = build_object_dataset(tmp_path / "b", (16,), cutout_folder, progress=False, config=TINY)
    assert other["files"] == manifest["files"]  # same bytes in another folder (sha256 of every file)


def test_the_stored_flow_is_the_scenes_and_the_dataset_serves_it(cutout_folder, tmp_path):
    build_object_dataset(tmp_path, (32,), cutout_folder, progress=False, config=TINY)
    data = ObjectClipsDataset(tmp_path, 32, "test")
    item = data[0]
    assert item["video"].shape == (16, 3, 32, 32) and item["flow"].shape == (15, 2, 32, 32)
    assert item["video"].min() >= -1 and item["video"].max() <= 1 and data.num_classes == 2
    clips = ObjectClipsDataset(tmp_path, 32, "all", uint8=True)
    moving = [clips[i] for i in range(len(clips))]
    video = torch.stack([m["video"] for m in moving]).float() / 255
    flow = torch.stack([m["flow"] for m in moving])
    right = np.mean([_warp_error(v, f) for v, f in zip(video, flow, strict=True)])
    still = np.mean([_warp_error(v, torch.zeros_like(f)) for v, f in zip(video, flow, strict=True)])
    assert right < 0.5 * still  # the stored flow explains the stored frames
    with pytest.raises(FileNotFoundError, match="--objects --resolutions 16"):
        ObjectClipsDataset(tmp_path, 16)


def test_too_few_photographs_are_named_before_anything_is_written(tmp_path):
    folder = tmp_path / "few"
    _write(folder / "a.png", _photo_like(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="1 usable photographed cut-outs; the split needs at least"):
        build_object_dataset(tmp_path / "data", (16,), folder, progress=False, config=TINY)
    assert not (tmp_path / "data").exists()


def test_data_build_objects_refuses_in_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(objects, "TUXPAINT_STAMPS", tmp_path / "not-installed")
    assert cli.main(["data", "build", "--root", str(tmp_path / "data"), "--objects"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "apt-get install tuxpaint-stamps-default" in err
        and "--objects DIR" in err
    )
    few = tmp_path / "few"
    _write(few / "a.png", _photo_like(np.random.default_rng(0)))
    assert cli.main(["data", "build", "--root", str(tmp_path / "data"), "--objects", str(few)]) == 2
    assert "1 usable photographed cut-outs" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # the embedded build did not start either


def test_data_sheet_draws_clips_of_several_categories_and_keeps_a_users_file(cutout_folder, tmp_path, capsys):
    build_object_dataset(tmp_path, (32,), cutout_folder, progress=False, config=TINY)
    out = tmp_path / "sheet.png"
    args = ["data", "sheet", "--root", str(tmp_path), "--resolution", "32", "--num", "3", "--out", str(out)]
    assert cli.main(args) == 0 and out.stat().st_size > 10_000
    out.write_bytes(b"mine")
    assert cli.main(args) == 2 and out.read_bytes() == b"mine"
    assert "exists; choose another --out or pass --overwrite" in capsys.readouterr().err
    assert cli.main(["data", "info", "--root", str(tmp_path)]) == 0
    info = capsys.readouterr().out
    assert "object-motion set objects-v1" in info and "cut-outs 10 train / 4 held out" in info
    labels = [0, 0, 0, 1, 1, 2]
    picks = clips_across_categories(labels, 3, seed=1)
    assert sorted(labels[i] for i in picks) == [0, 1, 2] and len(set(picks)) == 3
