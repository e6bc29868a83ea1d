"""Data: embedded dataset build (determinism, identity split, camera motion), UCF-101 loader on a
generated UCF-shaped tree (same code path as the real one), broken videos, prompts/templates, CLI."""

from __future__ import annotations

import json
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pyoco_lab import cli
from pyoco_lab.data import (
    CLASS_NAMES,
    UCF101_CLASSES,
    EmbeddedBuildConfig,
    EmbeddedFramesDataset,
    EmbeddedVideoDataset,
    UCF101Clips,
    UCF101Frames,
    build_embedded_dataset,
    caption_templates,
    captions,
    detect_shots,
    make_dataloader,
    plan_clips,
    resize_center_crop,
    to_unit_range,
    ucf101_prompt,
)
from pyoco_lab.data.camera import render_photo_clip
from pyoco_lab.data.embedded import prepare_photo
from pyoco_lab.training import batches, distributed
from pyoco_lab.training import config as training_config

# A reduced build: every source and every motion class, a handful of clips each (a few seconds).
SMALL = EmbeddedBuildConfig(
    clips_per_motion=1, video_crops=1, video_window_step=32, video_frame_strides=(2,), render_size=64
)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded")
    build_embedded_dataset(root, resolutions=(32,), progress=False, config=SMALL)
    return root


# ----------------------------------------------------------------------------------------------
# Prompts and templates (Appendix A.2)


def test_prompts_cover_the_101_classes_in_class_index_order():
    assert len(UCF101_CLASSES) == 101 and len(set(UCF101_CLASSES)) == 101
    assert UCF101_CLASSES[0] == "ApplyEyeMakeup" and UCF101_CLASSES[-1] == "YoYo"
    assert ucf101_prompt("JumpRope") == "a person skipping with jump rope"
    assert ucf101_prompt("apply_eye_makeup") == "applying eye makeup"
    assert ucf101_prompt("PlayingDhol") == "a musician playing the indian dhol"  # split across a page
    with pytest.raises(ValueError, match="UCF101_CLASSES"):
        ucf101_prompt("Yoga")


def test_caption_templates():
    assert len(caption_templates()) == 10
    assert all("[class]" in t for t in caption_templates())
    got = captions("Kayaking")
    assert got[0] == "a man is kayaking." and got[-1] == "kayaking." and len(set(got)) == 10
    assert captions("ApplyEyeMakeup")[5] == "a man is doing apply eye makeup."
    with pytest.raises(ValueError):
        captions(" ")


# ----------------------------------------------------------------------------------------------
# Embedded dataset


def test_default_plan_has_enough_clips_and_an_identity_split():
    identities, specs, _ = plan_clips(EmbeddedBuildConfig())
    assert len(specs) >= 2000
    labels = {label for _, label, _ in specs}
    assert labels == set(CLASS_NAMES)
    splits = {ident.split for ident in identities}
    assert splits == {"train", "test"}
    for kind in ("photo", "shot"):
        assert {i.split for i in identities if i.kind == kind} == {"train", "test"}, kind
    # real videos are cut at scene cuts: bikes has several shots, none shorter than a clip
    shots = [i for i in identities if i.kind == "shot"]
    assert sum(i.source == "bikes" for i in shots) >= 3
    assert all(i.frames[1] - i.frames[0] >= 16 for i in shots)


def test_detect_shots_finds_a_cut():
    rng = np.random.default_rng(0)
    a = np.clip(rng.normal(60, 5, (20, 8, 8, 3)), 0, 255).astype(np.uint8)
    b = np.clip(rng.normal(200, 5, (25, 8, 8, 3)), 0, 255).astype(np.uint8)
    shots = detect_shots(np.concatenate([a, b]), threshold=0.1, min_length=16)
    assert shots == [range(0, 20), range(20, 45)]
    assert detect_shots(np.concatenate([a, b]), min_length=21) == [range(20, 45)]


def test_build_is_deterministic_idempotent_and_atomic(small_root, tmp_path):
    directory = small_root / "embedded" / "v1"
    again = build_embedded_dataset(tmp_path, resolutions=(32,), progress=False, config=SMALL)
    assert again["built_now"]
    for name in ("clips_32.npy", "index.json"):
        assert (directory / name).read_bytes() == (tmp_path / "embedded" / "v1" / name).read_bytes(), name
    started = time.perf_counter()
    cached = build_embedded_dataset(tmp_path, resolutions=(32,), progress=False, config=SMALL)
    assert not cached["built_now"] and time.perf_counter() - started < 1.0
    assert not list((tmp_path / "embedded" / "v1").glob("*.tmp"))
    # different parameters are a different build (the manifest is keyed by their hash)
    assert EmbeddedBuildConfig(**{**SMALL.__dict__, "seed": 1}).digest() != cached["params_hash"]


def test_embedded_items_and_split_by_identity(small_root):
    train = EmbeddedVideoDataset(small_root, resolution=32, split="train")
    test = EmbeddedVideoDataset(small_root, resolution=32, split="test", num_frames=8)
    assert len(train) > 0 and len(test) > 0
    assert not set(train.video_ids) & set(test.video_ids), "an identity leaks across splits"
    item = train[0]
    assert item["video"].shape == (16, 3, 32, 32) and item["video"].dtype == torch.float32
    assert -1.0 <= item["video"].min() and item["video"].max() <= 1.0
    assert item["video"].std() > 0.05  # real imagery, not a constant
    assert test[0]["video"].shape == (8, 3, 32, 32)
    assert train.num_classes == len(CLASS_NAMES) == len(train.class_names)
    assert set(train.labels) | set(test.labels) == set(range(len(CLASS_NAMES)))
    frames = EmbeddedFramesDataset(small_root, resolution=32, split="train")
    assert len(frames) == 16 * len(train)
    image = frames[17]
    assert image["image"].shape == (3, 32, 32)
    assert torch.equal(image["image"], train[1]["video"][1])
    assert image["video_id"] == train[1]["video_id"]


def test_embedded_items_as_stored_bytes_convert_to_the_float_items(small_root):
    # Training loads the bytes (a quarter of the transfer) and converts on the device: the floats
    # must be the very ones the float items hold, which are x / 127.5 - 1 of the stored bytes.
    floats = EmbeddedVideoDataset(small_root, resolution=32, split="train")
    stored = EmbeddedVideoDataset(small_root, resolution=32, split="train", uint8=True)
    frames = EmbeddedFramesDataset(small_root, resolution=32, split="train", uint8=True)
    for i in (0, len(floats) - 1):
        raw = stored[i]["video"]
        assert raw.dtype == torch.uint8 and raw.shape == (16, 3, 32, 32)
        old = torch.from_numpy(raw.numpy().astype(np.float32)) / 127.5 - 1.0
        assert torch.equal(floats[i]["video"], old) and torch.equal(to_unit_range(raw), old)
        assert torch.equal(frames[16 * i + 3]["image"], raw[3])


def test_embedded_missing_build_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="pyoco-lab data build"):
        EmbeddedVideoDataset(tmp_path, resolution=32)
    with pytest.raises(ValueError, match="num_frames"):
        EmbeddedVideoDataset(tmp_path, resolution=32, num_frames=17)
    with pytest.raises(ValueError, match="resolutions"):
        build_embedded_dataset(tmp_path, resolutions=(4,), progress=False)


def _shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(dy, dx) such that b ~ a shifted by (dy, dx), by phase correlation."""
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(b, a, upsample_factor=4)
    return shift


@pytest.mark.parametrize(
    "motion, axis, sign", [("pan-right", 1, -1), ("pan-left", 1, 1), ("pan-down", 0, -1)]
)
def test_pan_moves_the_content_against_the_camera(motion, axis, sign):
    image = prepare_photo("astronaut", 256)
    clip = render_photo_clip(image, motion, np.random.default_rng(3), 64).mean(1).numpy()
    shift = _shift(clip[0], clip[-1])
    # a camera panning right sees the scene slide left, by several pixels over 16 frames
    assert sign * shift[axis] > 3 and abs(shift[1 - axis]) < 2.5, shift


# ----------------------------------------------------------------------------------------------
# UCF-101: a small UCF-shaped tree written with PyAV, read through the real code path

CLASSES = ["ApplyEyeMakeup", "Archery", "HandstandPushups"]


def _write_avi(path: Path, frames: int, phase: int, size=(96, 72)) -> None:
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        x = np.arange(width)
        for t in range(frames):
            image = np.zeros((height, width, 3), np.uint8)
            image[..., 0] = (x * 3 + 7 * t + 40 * phase) % 256
            image[..., 1] = 128 + 100 * np.sin(np.arange(height)[:, None] / 5 + t / 3 + phase)
            image[..., 2] = 60 * phase
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ucf")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    train, test = [], []
    for label, name in enumerate(CLASSES):
        folder = root / "UCF-101" / name
        folder.mkdir(parents=True)
        # UCF spells some file names differently from their folder (HandStandPushups)
        stem = "HandStandPushups" if name == "HandstandPushups" else name
        for group in (1, 2, 3):
            rel = f"{name}/v_{stem}_g0{group}_c01.avi"
            _write_avi(root / "UCF-101" / rel, frames=24 + 4 * group, phase=label)
            (test if group == 1 else train).append(rel)
    for fold in (1, 2, 3):
        (lists / f"trainlist0{fold}.txt").write_text(
            "".join(f"{r} {CLASSES.index(r.split('/')[0]) + 1}\n" for r in train)
        )
        (lists / f"testlist0{fold}.txt").write_text("".join(f"{r}\n" for r in test))
    return root


def test_ucf101_clips_follow_the_protocol(ucf_root):
    data = UCF101Clips(ucf_root, split="train", num_frames=16, resolution=32, frame_stride=1)
    assert len(data) == 6 and data.num_classes == 3 and data.class_names == tuple(CLASSES)
    item = data[5]
    assert item["video"].shape == (16, 3, 32, 32) and item["video"].dtype == torch.float32
    assert -1 <= item["video"].min() and item["video"].max() <= 1
    assert item["label"] == 2 and item["class_name"] == "HandstandPushups" and item["path"].endswith(".avi")
    # the blue channel encodes the class (60 * label -> -1 + 2 * 60 * label / 255)
    expected_blue = -1 + 2 * 60 * 2 / 255
    assert abs(item["video"][:, 2].mean().item() - expected_blue) < 0.05
    # frames move: consecutive frames differ
    assert (item["video"][1:] - item["video"][:-1]).abs().mean() > 0.01
    test = UCF101Clips(ucf_root, split="test", fold=2, resolution=32)
    assert len(test) == 3 and [test[i]["label"] for i in range(3)] == [0, 1, 2]
    assert len(UCF101Clips(ucf_root, split="all", resolution=32)) == 9


def test_ucf101_random_start_and_seeded_start(ucf_root):
    data = UCF101Clips(ucf_root, split="train", num_frames=4, resolution=16, frame_stride=3)
    torch.manual_seed(0)
    draws = {tuple(data[0]["video"][0, 0, 0, :4].tolist()) for _ in range(8)}
    assert len(draws) > 1, "clip start is not random"
    seeded = UCF101Clips(ucf_root, split="train", num_frames=4, resolution=16, frame_stride=3, seed=1)
    assert torch.equal(seeded[0]["video"], seeded[0]["video"])


def test_ucf101_frames_view(ucf_root):
    frames = UCF101Frames(ucf_root, split="train", resolution=32)
    item = frames[0]
    assert item["image"].shape == (3, 32, 32) and item["label"] == 0


def test_resize_center_crop_keeps_the_centre():
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, :20] = (255, 0, 0)  # left quarter red
    frames[:, :, 20:60] = (0, 255, 0)  # centre half green
    frames[:, :, 60:] = (0, 0, 255)
    out = resize_center_crop(frames, 16)
    assert out.shape == (2, 3, 16, 16)
    centre = out[:, :, :, 1:-1]  # the antialiasing filter may touch the outermost columns
    assert torch.allclose(centre[:, 1], torch.ones(()), atol=1e-3) and centre[:, 0].max() < -0.99


def test_ucf101_dataloader_with_workers(ucf_root):
    data = UCF101Clips(ucf_root, split="train", num_frames=8, resolution=16)
    loader = make_dataloader(data, batch_size=3, num_workers=2, seed=0)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["video"].shape == (3, 8, 3, 16, 16) and len(batches[0]["class_name"]) == 3


# ----------------------------------------------------------------------------------------------
# Bad input


def test_missing_ucf_root_or_split_files_say_where_and_how(tmp_path, ucf_root):
    with pytest.raises(FileNotFoundError, match=r"UCF-101.*crcv\.ucf\.edu"):
        UCF101Clips(tmp_path / "nowhere")
    (tmp_path / "UCF-101" / "Archery").mkdir(parents=True)
    (tmp_path / "UCF-101" / "Archery" / "v.avi").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"classInd\.txt.*ucfTrainTestlist"):
        UCF101Clips(tmp_path)
    with pytest.raises(ValueError, match="fold"):
        UCF101Clips(ucf_root, fold=4)
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Archery\n")
    with pytest.raises(FileNotFoundError, match="trainlist01.txt is missing"):
        UCF101Clips(tmp_path)


@pytest.fixture
def broken_root(ucf_root, tmp_path) -> Path:
    """The generated tree plus broken videos listed in trainlist01: empty, garbage, truncated, too short."""
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(ucf_root, root)
    folder = root / "UCF-101" / "Archery"
    good = (folder / "v_Archery_g02_c01.avi").read_bytes()
    (folder / "v_Archery_g04_c01.avi").write_bytes(b"")
    (folder / "v_Archery_g05_c01.avi").write_bytes(np.random.default_rng(0).bytes(4000))
    (folder / "v_Archery_g06_c01.avi").write_bytes(good[: len(good) // 2])
    _write_avi(folder / "v_Archery_g07_c01.avi", frames=5, phase=1)
    names = [f"Archery/v_Archery_g0{g}_c01.avi 2\n" for g in (4, 5, 6, 7, 8)]  # g08 does not exist
    with open(root / "ucfTrainTestlist" / "trainlist01.txt", "a") as f:
        f.writelines(names)
    return root


def test_broken_videos_are_skipped_named_and_counted(broken_root):
    with pytest.warns(UserWarning, match="1 videos listed .* missing"):
        data = UCF101Clips(broken_root, split="train", num_frames=16, resolution=16)
    assert len(data) == 10
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [data[i] for i in range(len(data))]
    # every index yields a real clip from a good video
    assert all(item["video"].shape == (16, 3, 16, 16) for item in items)
    assert all(Path(item["path"]).stem[-7:-4] in ("g02", "g03") for item in items)
    reasons = {Path(path).stem[-7:-4]: reason for path, reason in data.skipped.items()}
    assert reasons.pop("g06") in ("unreadable", "too short", "truncated")  # depends on where the cut falls
    assert reasons == {"g04": "empty", "g05": "unreadable", "g07": "too short", "g08": "missing"}, reasons
    assert sum(data.skipped_summary().values()) == 5
    messages = " ".join(str(w.message) for w in caught)
    for g in (4, 5, 6, 7):
        assert f"v_Archery_g0{g}_c01.avi" in messages
    # a DataLoader with workers survives them too
    loader = make_dataloader(data, batch_size=5, num_workers=2, seed=0)
    assert sum(batch["video"].shape[0] for batch in loader) == 10


def test_validate_drops_broken_videos_up_front(broken_root):
    with pytest.warns(UserWarning):
        data = UCF101Clips(broken_root, split="train", num_frames=16, resolution=16, validate=True)
    assert len(data) == 6
    assert sum(data.skipped_summary().values()) == 5


# ----------------------------------------------------------------------------------------------
# CLI


def test_cli_data_info_and_bad_resolution(small_root, capsys):
    assert cli.main(["data", "info", "--root", str(small_root)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((small_root / "embedded" / "v1" / "manifest.json").read_text())
    assert f"{manifest['num_clips']:,} clips x 16 frames at 32x32" in out and "UCF-101: not found" in out
    assert cli.main(["data", "build", "--root", str(small_root), "--resolutions", "4"]) == 2
    assert "resolutions must be between" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_full_build(tmp_path, capsys):
    """The real default build: >= 2,000 clips at 32 and 64, a second call is instant."""
    assert cli.main(["data", "build", "--root", str(tmp_path), "--quiet"]) == 0
    assert "built in" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "embedded" / "v1" / "manifest.json").read_text())
    assert manifest["num_clips"] >= 2000 and manifest["resolutions"] == [32, 64]
    assert cli.main(["data", "build", "--root", str(tmp_path)]) == 0
    assert "already built" in capsys.readouterr().out
    clips = np.load(tmp_path / "embedded" / "v1" / "clips_64.npy", mmap_mode="r")
    assert clips.shape == (manifest["num_clips"], 16, 3, 64, 64)


# ----------------------------------------------------------------------------------------------
# A damaged build: truncated arrays, old manifests, garbage JSON (on copies of the shared build)


def check_embedded_dataset(root, *, verify=False) -> list[str]:
    from pyoco_lab.data import check_embedded_dataset as check

    return check(root, verify=verify)


def _copy_build(small_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(small_root, root)
    return root, root / "embedded" / "v1"


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def test_manifest_records_every_files_size_and_sha256(small_root):
    import hashlib

    directory = small_root / "embedded" / "v1"
    files = json.loads((directory / "manifest.json").read_text())["files"]
    assert sorted(files) == ["clips_32.npy", "index.json"]
    for name, record in files.items():
        data = (directory / name).read_bytes()
        assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    assert check_embedded_dataset(small_root) == [] and check_embedded_dataset(small_root, verify=True) == []


@pytest.mark.parametrize("keep", [40, 0.5, -1])  # inside the .npy header, half the data, one byte short
def test_truncated_array_is_named_with_the_fix_not_a_traceback(small_root, tmp_path, capsys, keep):
    root, directory = _copy_build(small_root, tmp_path)
    array = directory / "clips_32.npy"
    size = array.stat().st_size
    _truncate(array, {40: 40, 0.5: size // 2, -1: size - 1}[keep])
    with pytest.raises(ValueError, match=r"clips_32\.npy.*pyoco-lab data build --resolutions 32") as caught:
        EmbeddedVideoDataset(root, resolution=32)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match=r"clips_32\.npy"):
        EmbeddedFramesDataset(root, resolution=32)
    # an older manifest records no sizes: the .npy header still tells a short file
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["files"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"clips_32\.npy"):
        EmbeddedVideoDataset(root, resolution=32)
    assert cli.main(["data", "info", "--root", str(root)]) == 0
    assert "problem: " in capsys.readouterr().out


def test_build_rebuilds_a_truncated_array_and_a_garbage_manifest(small_root, tmp_path, capsys, monkeypatch):
    import functools

    from pyoco_lab.commands import data as data_command

    root, directory = _copy_build(small_root, tmp_path)
    good = (directory / "clips_32.npy").read_bytes()
    _truncate(directory / "clips_32.npy", len(good) // 2)
    # the CLI's build with this file's small parameters (the default build takes a minute)
    monkeypatch.setattr(
        data_command, "build_embedded_dataset", functools.partial(build_embedded_dataset, config=SMALL)
    )
    assert cli.main(["data", "build", "--root", str(root), "--resolutions", "32", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "built in" in out and "already built" not in out
    assert "repaired:" in err and "clips_32.npy" in err
    assert (directory / "clips_32.npy").read_bytes() == good  # deterministic: the same bytes again
    assert not build_embedded_dataset(root, (32,), progress=False, config=SMALL)["built_now"]
    # a manifest that is not JSON: `data info` names it (exit 2), and the build rebuilds it
    (directory / "manifest.json").write_text('{"format_version": 1, "resolu')
    assert cli.main(["data", "info", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "manifest.json" in err and "pyoco-lab data build" in err
    rebuilt = build_embedded_dataset(root, (32,), progress=False, config=SMALL)
    assert rebuilt["built_now"] and "manifest.json" in rebuilt["repaired"][0]
    assert (directory / "clips_32.npy").read_bytes() == good
    EmbeddedVideoDataset(root, resolution=32)


def test_old_manifest_without_sizes_is_accepted_when_its_files_are_whole(small_root, tmp_path):
    root, directory = _copy_build(small_root, tmp_path)
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["files"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    started = time.perf_counter()
    found = build_embedded_dataset(root, (32,), progress=False, config=SMALL)
    assert not found["built_now"] and found["repaired"] == [] and time.perf_counter() - started < 1.0
    assert len(EmbeddedVideoDataset(root, resolution=32)) > 0
    with open(directory / "clips_32.npy", "ab") as f:  # bytes past the header's end: not that array
        f.write(b"\0" * 7)
    assert "its header says" in " ".join(check_embedded_dataset(root))


def test_verify_compares_sha256_and_a_damaged_index_is_named(small_root, tmp_path):
    root, directory = _copy_build(small_root, tmp_path)
    array = directory / "clips_32.npy"
    data = bytearray(array.read_bytes())
    data[-1] ^= 0xFF  # same size, one bit pattern changed: only the hash tells
    array.write_bytes(bytes(data))
    assert check_embedded_dataset(root) == []
    assert any("clips_32.npy" in p and "sha256" in p for p in check_embedded_dataset(root, verify=True))
    (directory / "index.json").write_text("{}")
    with pytest.raises(ValueError, match=r"index\.json.*pyoco-lab data build"):
        EmbeddedVideoDataset(root, resolution=32)
    (directory / "index.json").unlink()
    with pytest.raises(ValueError, match=r"index\.json is missing"):
        EmbeddedVideoDataset(root, resolution=32)


# ----------------------------------------------------------------------------------------------
# Video decoding without decord (no ARM64 wheels): PyAV reads the same frames


@pytest.fixture
def pyav_backend(monkeypatch):
    monkeypatch.setenv("PYOCO_VIDEO_BACKEND", "pyav")


def test_pyav_fallback_reads_the_same_frames_as_decord(ucf_root):
    from pyoco_lab.data import video_io

    path = next((ucf_root / "UCF-101" / "Archery").glob("*.avi"))
    indices = [0, 3, 7, 20]
    ours = {b: video_io.VideoFile(path, backend=b) for b in video_io.BACKENDS}
    assert len(ours["decord"]) == len(ours["pyav"]) == video_io.frame_count(path, backend="pyav")
    a, b = ours["decord"].frames(indices), ours["pyav"].frames(indices)
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    # the same frames (each decoder converts YUV to RGB its own way: a few levels apart, not another frame)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3
    neighbour = ours["pyav"].frames([1, 4, 8, 21])
    assert np.abs(a.astype(int) - neighbour.astype(int)).mean() > np.abs(a.astype(int) - b.astype(int)).mean()
    resized = video_io.VideoFile(path, width=48, height=36, backend="pyav")
    assert resized.frames([0]).shape == (1, 36, 48, 3) and resized.size == (36, 48)
    with pytest.raises(IndexError, match="outside"):
        ours["pyav"].frames([len(ours["pyav"])])


def test_ucf101_protocol_and_broken_videos_with_the_pyav_fallback(pyav_backend, ucf_root, broken_root):
    from pyoco_lab.data import video_io

    assert video_io.default_backend() == "pyav"
    # the backend is the dataset's own, so DataLoader workers (started from a fork server, whose
    # environment may predate this test's) decode with it too
    assert UCF101Clips(ucf_root, split="train", num_frames=16, resolution=16).backend == "pyav"
    test_ucf101_clips_follow_the_protocol(ucf_root)
    test_broken_videos_are_skipped_named_and_counted(broken_root)
    test_validate_drops_broken_videos_up_front(broken_root)


def test_unknown_backend_is_named(monkeypatch):
    from pyoco_lab.data import video_io

    monkeypatch.setenv("PYOCO_VIDEO_BACKEND", "opencv")
    with pytest.raises(ValueError, match="PYOCO_VIDEO_BACKEND='opencv'; choose one of decord, pyav"):
        video_io.default_backend()


def test_training_workers_start_from_a_fork_server_and_read_the_same_batches(small_root):
    """Training's loader workers start from a fork server (a fork of the trainer can inherit a native
    lock held by a decoder or CUDA thread and hang): each gets the dataset pickled -- without its memory
    map, which would pickle as a copy of every clip -- and reads bit for bit the batches of the trainer."""
    clips = EmbeddedVideoDataset(small_root, 32, split="train", uint8=True)
    frames = EmbeddedFramesDataset(small_root, 32, split="train", uint8=True)
    assert len(pickle.dumps(clips)) < 100_000 < clips._clips.nbytes
    again = pickle.loads(pickle.dumps(clips))
    assert torch.equal(again[3]["video"], clips[3]["video"])

    def batches_with(workers: int) -> list:
        config = training_config.TrainConfig(
            phase="video", resolution=32, num_frames=4, batch_size=3, steps=3, joint_images=2,
            num_workers=workers, noise="progressive", alpha=2.0,
        )  # fmt: skip
        steps = batches.step_batches(config, clips, frames, distributed.DistEnv(), 0)
        return [tuple(t.clone() for t in step) for step in steps]

    in_process, from_workers = batches_with(0), batches_with(2)
    assert len(in_process) == len(from_workers) == 3
    for ours, theirs in zip(in_process, from_workers, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
