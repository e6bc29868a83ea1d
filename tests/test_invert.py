"""``pyoco-lab invert``: your own video files through the shipped image model, end to end (real decode,
real inversion at a few ODE steps)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import imageio.v3 as iio
import numpy as np
import pytest
from safetensors.torch import load_file

from pyoco_lab.analysis import inversion
from pyoco_lab.cli import main


def _write_video(path: Path, frames: np.ndarray, codec: str = "mpeg4") -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _pan(seed: int, n: int, size=(48, 64)) -> np.ndarray:
    """A smooth random texture panning right: neighbouring frames alike, as in real footage."""
    rng = np.random.default_rng(seed)
    h, w = size
    big = rng.random((h, w + 2 * n, 3))
    kernel = np.ones(5) / 5
    for axis in (0, 1):
        big = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, big)
    return np.stack([(big[:, 2 * t : 2 * t + w] * 255).astype(np.uint8) for t in range(n)])


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    cut = np.concatenate([_pan(0, 6), (_pan(1, 6) * 0.3).astype(np.uint8)])  # a cut to a darker shot
    return (
        _write_video(root / "with_cut.avi", cut),
        _write_video(root / "other.mp4", _pan(2, 10), codec="libx264"),
    )


def test_invert_writes_maps_figures_and_numbers_and_reports_the_cut(videos, tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "invert",
        *map(str, videos),
        "--image-model",
        "pretrained:lab-tiny-16",
        "--steps",
        "4",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for name in ("maps.safetensors", "frames_and_maps.png", "similarity.png", "similarity_vs_distance.png"):
        assert (out / name).is_file() and str(out / name) in printed
    report = json.loads((out / "invert.json").read_text())
    first, second = report["videos"]
    assert first["num_frames"] == 12 and first["num_shots"] == 2 and first["across_cut"]["count"] == 36
    assert second["num_shots"] == 1 and second["across_cut"] is None
    assert set(first["fitted_alpha"]) == {"mixed", "progressive"}
    assert report["between_videos"]["count"] == 12 * 10
    assert report["settings"]["shots"][0] == [0] * 6 + [1] * 6
    tensors = load_file(str(out / "maps.safetensors"))
    assert tensors["maps0"].shape == (12, 3, 16, 16) and tensors["frames1"].shape == (10, 3, 16, 16)
    assert tensors["indices0"].tolist() == list(range(12))
    assert iio.imread(out / "frames_and_maps.png").shape[1] >= 12 * 16
    # a stride and a frame range select the frames asked for
    assert main([*args[:-2], "--start", "2", "--stride", "3", "--out", str(tmp_path / "strided")]) == 0
    strided = json.loads((tmp_path / "strided" / "invert.json").read_text())
    assert strided["settings"]["frame_indices"][0] == [2, 5, 8, 11]


def test_invert_refuses_bad_files_in_one_line_and_writes_nothing(videos, tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(3000))
    out = tmp_path / "never"
    assert main(["invert", str(videos[0]), str(junk), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "junk.mp4 is not a video this machine can decode" in err and len(err.strip().splitlines()) == 1
    assert main(["invert", str(tmp_path / "missing.avi"), "--out", str(out)]) == 2
    assert "missing.avi not found" in capsys.readouterr().err
    assert main(["invert", str(videos[0]), "--start", "11", "--out", str(out)]) == 2
    assert "at least 2 are needed" in capsys.readouterr().err
    assert not out.exists()


def _moving_shot(seed: int, n: int, mean: float, size=(48, 64), speed: int = 2) -> np.ndarray:
    """A smooth texture sliding ``speed`` px a frame: neighbours alike, frames 7 or more apart about as
    different as two shots (what a moving real scene does to a cut rule that sees only strided frames)."""
    rng = np.random.default_rng(seed)
    h, w = size
    big = rng.random((h, w + speed * n))
    kernel = np.ones(11) / 11
    for axis in (0, 1, 0, 1):
        big = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, big)
    big = np.clip((big - big.mean()) / big.std() * 0.22 + mean, 0, 1)
    tint = rng.uniform(0.7, 1.0, 3)
    return np.stack(
        [(big[:, speed * t : speed * t + w, None] * tint * 255).astype(np.uint8) for t in range(n)]
    )


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    """80 frames: shot one 0-39, a cut, shot two 40-79."""
    frames = np.concatenate([_moving_shot(0, 40, mean=0.5), _moving_shot(1, 40, mean=0.32)])
    return _write_video(tmp_path_factory.mktemp("two_shots") / "two_shots.avi", frames)


@pytest.mark.parametrize("stride, start", [(1, 32), (3, 0), (7, 0), (12, 0)])
def test_invert_finds_the_cut_whatever_the_stride(two_shots, tmp_path, stride, start):
    out = tmp_path / "out"
    args = ["invert", str(two_shots), "--image-model", "pretrained:lab-tiny-16", "--steps", "2"]
    assert main([*args, "--stride", str(stride), "--start", str(start), "--out", str(out)]) == 0
    report = json.loads((out / "invert.json").read_text())
    indices = report["settings"]["frame_indices"][0]
    assert report["settings"]["shots"][0] == [int(i >= 40) for i in indices]
    assert report["videos"][0]["num_shots"] == 2 and report["settings"]["cut_frames"] == [[min(
        i for i in indices if i >= 40
    )]]  # fmt: skip
    across = report["videos"][0]["across_cut"]
    assert across["count"] == sum(i < 40 for i in indices) * sum(i >= 40 for i in indices)


def test_invert_never_replaces_what_it_did_not_write(videos, tmp_path, monkeypatch, capsys):
    args = ["invert", str(videos[1]), "--image-model", "pretrained:lab-tiny-16", "--steps", "2"]
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    assert main([*args, "--out", str(precious)]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (precious / "notes.txt").read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["precious"]
    some_file = tmp_path / "some_file"
    some_file.write_text("mine too")
    assert main([*args, "--out", str(some_file)]) == 2
    assert "is a file" in capsys.readouterr().err and some_file.read_text() == "mine too"
    # its own earlier output is replaced; --overwrite replaces a folder the user means to give up
    own = tmp_path / "own"
    for _ in range(2):
        assert main([*args, "--out", str(own)]) == 0
    assert (own / "invert.json").is_file()
    assert main([*args, "--out", str(precious), "--overwrite"]) == 0
    assert not (precious / "notes.txt").exists() and (precious / "invert.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["own", "precious", "some_file"]  # nothing hidden


def test_invert_refuses_an_unwritable_out_before_inverting(videos, monkeypatch, capsys, read_only_folder):
    def never(*args, **kwargs):
        raise AssertionError("inverted before checking --out")

    monkeypatch.setattr(inversion, "invert_clips", never)
    locked = read_only_folder
    out = locked / "deep" / "out"
    assert main(["invert", str(videos[1]), "--image-model", "pretrained:lab-tiny-16", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        "cannot write into" in err and "Read-only file system" in err and len(err.strip().splitlines()) == 1
    )
    assert not locked.exists()
