"""Clip decoding throughput: decord (the lab's UCF-101 path) vs PyAV, on the same files.

Each read is one training clip: 16 frames from a random start, resized (short side) and centre
cropped to 64x64 -- exactly what ``UCF101Clips`` does. PyAV decodes from the first frame up to the
last one needed (the common simple reader); decord seeks through the AVI index. Then the
DataLoader rows show what a training step sees with 0 and N worker processes.

    .venv/bin/python benchmarks/bench_decode.py                   # generated UCF-like .avi files
    .venv/bin/python benchmarks/bench_decode.py --root /data      # your UCF-101 copy

Without --root it writes ``--videos`` 320x240 MPEG-4 .avi files (UCF-101's format) of
``--frames`` frames into a temporary UCF-shaped tree.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pyoco_lab.data import UCF101Clips, make_dataloader, read_video_frames, resize_center_crop


def write_tree(root: Path, videos: int, frames: int) -> None:
    """A UCF-shaped tree of moving-texture videos at UCF-101's 320x240, MPEG-4 in AVI."""
    import av

    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    classes = ["ApplyEyeMakeup", "Archery", "Biking", "Diving"]
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    train = []
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(240, 640, 3), dtype=np.uint8)
    for v in range(videos):
        name = classes[v % len(classes)]
        rel = f"{name}/v_{name}_g{v:02d}_c01.avi"
        (root / "UCF-101" / name).mkdir(parents=True, exist_ok=True)
        with av.open(str(root / "UCF-101" / rel), "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            stream.bit_rate = 1_000_000
            for t in range(frames):
                image = np.ascontiguousarray(np.roll(texture, 3 * t + 17 * v, axis=1)[:, :320])
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        train.append(f"{rel} {v % len(classes) + 1}\n")
    (lists / "trainlist01.txt").write_text("".join(train))
    (lists / "testlist01.txt").write_text("".join(line.split()[0] + "\n" for line in train[:1]))


def pyav_clip(path: str, num_frames: int, generator: torch.Generator) -> np.ndarray:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        length = stream.frames
        if length <= 0:  # no frame count in the header: count by decoding
            length = sum(1 for _ in container.decode(video=0))
            container.seek(0)
        start = int(torch.randint(0, max(length - num_frames, 0) + 1, (1,), generator=generator))
        frames = []
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == num_frames:
                break
    return np.stack(frames)


def decord_clip(path: str, num_frames: int, generator: torch.Generator) -> np.ndarray:
    return read_video_frames(path, num_frames=num_frames, generator=generator)[0]


def clips_per_second(read, paths, reads: int, resolution: int, num_frames: int) -> float:
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for i in range(reads):
        resize_center_crop(read(str(paths[i % len(paths)]), num_frames, generator), resolution)
    return reads / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default=None, help="a UCF-101 data root (default: generate files)")
    parser.add_argument("--videos", type=int, default=8, help="generated videos (default: 8)")
    parser.add_argument("--frames", type=int, default=150, help="frames per generated video (default: 150)")
    parser.add_argument("--reads", type=int, default=48, help="clips read per decoder (default: 48)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the last row")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        if not args.root:
            print(f"writing {args.videos} videos of {args.frames} frames at 320x240 ...", flush=True)
            write_tree(root, args.videos, args.frames)
        dataset = UCF101Clips(root, split="train", num_frames=16, resolution=64)
        paths = dataset.paths[: max(args.videos, 1)]
        rows = []
        for name, read in (("decord", decord_clip), ("PyAV", pyav_clip)):
            read(str(paths[0]), 16, torch.Generator().manual_seed(0))  # warm-up: codec init, page cache
            rows.append((name, clips_per_second(read, paths, args.reads, 64, 16)))
        for workers in sorted({0, args.workers}):
            loader = make_dataloader(dataset, batch_size=args.batch_size, num_workers=workers, seed=0)
            batches = max(1, args.reads // args.batch_size)
            started, seen = time.perf_counter(), 0
            for _ in range(-(-batches // max(len(loader), 1))):
                for batch in loader:
                    seen += batch["video"].shape[0]
                    if seen >= batches * args.batch_size:
                        break
                if seen >= batches * args.batch_size:
                    break
            rows.append((f"DataLoader, decord, {workers} workers", seen / (time.perf_counter() - started)))

    base = rows[0][1]
    print(f"\n16-frame 64x64 clips, {args.reads} reads per decoder, one thread per process")
    print(f"{'reader':36s} {'clips/s':>9s} {'vs decord':>10s}")
    for name, rate in rows:
        print(f"{name:36s} {rate:9.1f} {rate / base:9.2f}x")


if __name__ == "__main__":
    main()
