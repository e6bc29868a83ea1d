"""``pyoco-lab data``: build the embedded dataset offline, or describe what is there."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from pyoco_lab.data import (
    UCF101_URL,
    build_embedded_dataset,
    check_embedded_dataset,
    default_data_root,
    embedded_dir,
    load_manifest,
    resolve_ucf101,
)
from pyoco_lab.data.object_set import (
    ObjectBuildConfig,
    ObjectClipsDataset,
    build_object_dataset,
    clips_across_categories,
    load_object_manifest,
    objects_dir,
    plan_object_clips,
)
from pyoco_lab.data.objects import find_cutouts
from pyoco_lab.fileio import read_json
from pyoco_lab.viz.figures import save_figure
from pyoco_lab.viz.flow import clip_flow_figure


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="build the embedded dataset (offline) or show what data is available",
        description=(
            "Data sets of the lab. `pyoco-lab data build` renders the embedded default dataset from real "
            "imagery shipped inside installed packages (no network); `pyoco-lab data info` describes the "
            "embedded build and any UCF-101 copy under the data root."
        ),
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build the embedded dataset (idempotent: a second call is instant; a truncated or missing "
        "array is rebuilt)",
    )
    build.add_argument(
        "--resolutions", type=int, nargs="+", default=[32, 64], help="frame sizes to write (default: 32 64)"
    )
    build.add_argument("--root", default=None, help="data folder (default: repo data/ or $PYOCO_DATA)")
    build.add_argument("--force", action="store_true", help="rebuild even if a finished build is found")
    build.add_argument(
        "--verify",
        action="store_true",
        help="also compare every file's sha256 with the manifest (sizes are always checked); "
        "a file that differs is rebuilt",
    )
    build.add_argument(
        "--objects",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="also build the object-motion set (embedded/objects-v1: photographed cut-outs moving over the "
        "lab's photos, with exact optical flow) from DIR, a folder of RGBA PNG cut-outs; without DIR, "
        "Tux Paint's stamps (apt-get install tuxpaint-stamps-default)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=run_build)
    sheet = actions.add_parser(
        "sheet",
        help="draw a contact sheet of the object-motion set: clips of several categories with their flow",
    )
    sheet.add_argument("--root", default=None, help="data folder (default: repo data/ or $PYOCO_DATA)")
    sheet.add_argument("--resolution", type=int, default=64, help="which stored size to draw (default 64)")
    sheet.add_argument("--split", choices=("train", "test"), default="train")
    sheet.add_argument(
        "--num", type=int, default=8, help="clips, one per category where possible (default 8)"
    )
    sheet.add_argument("--seed", type=int, default=0, help="which clips are drawn")
    sheet.add_argument("--out", required=True, help="PNG to write (refused if it exists, unless --overwrite)")
    sheet.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    sheet.set_defaults(func=run_sheet)
    info = actions.add_parser("info", help="describe the embedded build and UCF-101 under the data root")
    info.add_argument("--root", default=None, help="data folder (default: repo data/ or $PYOCO_DATA)")
    info.set_defaults(func=run_info)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _describe(manifest: dict, where) -> list[str]:
    lines = [
        f"embedded dataset v{manifest['format_version']} at {where}",
        f"  {manifest['num_clips']:,} clips x {manifest['num_frames']} frames at "
        + ", ".join(f"{r}x{r}" for r in manifest["resolutions"]),
        f"  split by identity: {manifest['num_train_clips']:,} train / "
        f"{manifest['num_test_clips']:,} test clips, "
        f"{manifest['num_identities']} identities (test: {', '.join(manifest['test_identities'])})",
        "  classes: " + ", ".join(f"{name} {n}" for name, n in manifest["clips_per_class"].items()),
    ]
    return lines


def _describe_objects(manifest: dict, where) -> list[str]:
    return [
        f"object-motion set {manifest['format']} at {where}",
        f"  {manifest['num_clips']:,} clips x {manifest['num_frames']} frames (+ flow) at "
        + ", ".join(f"{r}x{r}" for r in manifest["resolutions"]),
        f"  split by identity: {manifest['num_train_clips']:,} train / {manifest['num_test_clips']:,} test "
        f"clips; cut-outs {manifest['num_objects']['train']} train / {manifest['num_objects']['test']} held "
        f"out; held-out backgrounds {', '.join(manifest['test_backgrounds'])}",
        f"  cut-outs from {manifest['cutout_folder']}: {manifest['cutout_licence']}",
    ]


def run_build(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    objects_folder = None
    if args.objects is not None:  # checked before any rendering: one line naming the fix
        try:
            objects_folder, cutouts = find_cutouts(args.objects or None)
            plan_object_clips(cutouts, ObjectBuildConfig())  # enough photographs for the split?
        except (FileNotFoundError, ValueError) as error:
            print(f"pyoco-lab data build --objects: {error}", file=sys.stderr)
            return 2
    manifest = build_embedded_dataset(
        root=args.root,
        resolutions=args.resolutions,
        progress=not args.quiet,
        force=args.force,
        verify=args.verify,
    )
    took = time.perf_counter() - started
    for problem in manifest.get("repaired", []):
        print(f"repaired: {problem}; rebuilt it", file=sys.stderr)
    state = f"built in {took:.1f} s" if manifest["built_now"] else f"already built (checked in {took:.2f} s)"
    print(f"{state}:")
    print("\n".join(_describe(manifest, embedded_dir(args.root))))
    if objects_folder is not None:
        started = time.perf_counter()
        objects = build_object_dataset(
            args.root, args.resolutions, objects_folder, progress=not args.quiet, force=args.force
        )
        took = time.perf_counter() - started
        state = (
            f"built in {took:.1f} s" if objects["built_now"] else f"already built (checked in {took:.2f} s)"
        )
        print(f"{state}:")
        print("\n".join(_describe_objects(objects, objects_dir(args.root))))
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(
            f"pyoco-lab data sheet: {out} exists; choose another --out or pass --overwrite", file=sys.stderr
        )
        return 2
    if args.num < 1:
        print("pyoco-lab data sheet: --num must be at least 1", file=sys.stderr)
        return 2
    try:
        data = ObjectClipsDataset(args.root, args.resolution, args.split)
    except FileNotFoundError as error:
        print(f"pyoco-lab data sheet: {error}", file=sys.stderr)
        return 2
    index = read_json(objects_dir(args.root) / "index.json", "object-motion set index")
    picks = clips_across_categories(data.labels, args.num, args.seed)
    items = [data[i] for i in picks]
    titles = []
    for i in picks:
        clip = int(data.indices[i])
        names = [index["cutouts"][o]["relpath"].rsplit("/", 1)[-1][:-4] for o in index["objects"][clip]]
        motions = index["object_motions"][clip]
        titles.append(
            f"{index['background'][clip]}, {index['camera'][clip]}\n"
            + "\n".join(f"{n} ({m})" for n, m in zip(names, motions, strict=True))
        )
    clips = (torch.stack([item["video"] for item in items]) + 1) / 2
    fig = clip_flow_figure(clips, torch.stack([item["flow"] for item in items]), titles)
    save_figure(fig, out, dpi=130)
    print(
        f"wrote {out}: {len(picks)} {args.split} clips at {args.resolution}x{args.resolution} with their flow"
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.root)
    if manifest is None:
        print(f"embedded dataset: not built under {embedded_dir(args.root)} -- run `pyoco-lab data build`")
    else:
        print("\n".join(_describe(manifest, embedded_dir(args.root))))
        for problem in check_embedded_dataset(args.root):
            print(f"  problem: {problem} -- `pyoco-lab data build` repairs it")
    try:
        video_dir, split_dir = resolve_ucf101(args.root)
        classes = sum(1 for d in video_dir.iterdir() if d.is_dir())
        print(f"UCF-101: {classes} class folders in {video_dir}, split files in {split_dir}")
    except FileNotFoundError:
        root = args.root or default_data_root()
        print(f"UCF-101: not found under {root} (optional; get it from {UCF101_URL})")
    objects = load_object_manifest(args.root)
    if objects is None:
        print(
            f"object-motion set: not built under {objects_dir(args.root)} (`pyoco-lab data build --objects`)"
        )
    else:
        print("\n".join(_describe_objects(objects, objects_dir(args.root))))
    return 0
