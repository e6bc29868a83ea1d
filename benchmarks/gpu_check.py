"""Part (c) of gpu_check.sh: the `standard` preset's image and video steps on this device, and what
`make reproduce PRESET=standard` would cost at that speed.

    python benchmarks/gpu_check.py --device cuda
    python benchmarks/gpu_check.py --device cpu --tiny     # the CPU dry run (smoke preset's sizes)

The step times come from ``pyoco_lab.training.train`` itself (``bench_cpu.loop_worker``: the real loop with
data, prior noise, EMA and logging). The estimate sums, over every run of the preset's plan
(``study_plans.all_runs``), its steps times the measured step time of its phase, and adds the sampling of
``eval_samples`` clips per video run at the measured per-clip cost; models smaller than the measured
one are counted at its speed, so the estimate is an upper bound for them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cpu  # noqa: E402

from pyoco_lab.analysis import presets, study_plans, study_runs  # noqa: E402
from pyoco_lab.noise import NoisePrior  # noqa: E402
from pyoco_lab.sampling import sample_videos  # noqa: E402
from pyoco_lab.training import build_network  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the smoke preset's sizes (a CPU dry run)")
    args = parser.parse_args(argv)
    preset = "smoke" if args.tiny else "standard"
    s = presets.settings(preset)
    steps = 4 if args.tiny else 40
    every = 1 if args.tiny else 10
    measured = {}
    for phase in ("image", "video"):
        model = study_runs.image_run(s).config.model
        spec = dict(
            preset=preset,
            resolution=None,
            phase=phase,
            model=model,
            steps=steps,
            log_every=every,
            device=args.device,
        )
        result = bench_cpu.loop_worker(spec)
        measured[phase] = result["step_s"]
        print(
            f"{preset} {phase} phase ({model}): {1 / result['step_s']:.2f} steps/s, "
            f"{result['items_per_s']:.1f} items/s",
            flush=True,
        )

    video = study_runs.video_run(s, "iid", 0.0).config
    denoiser = build_network(video).to(args.device).eval()
    clips = 2 if args.tiny else 16
    started = time.perf_counter()
    sample_videos(
        denoiser,
        NoisePrior("progressive", 2.0),
        (video.num_frames, 3, video.resolution, video.resolution),
        clips,
        sampler=s.sampler.kind,
        num_steps=s.sampler.steps,
        sampler_options=s.sampler.options(),
        device=torch.device(args.device),
        progress=False,
    )
    per_clip = (time.perf_counter() - started) / clips
    print(f"sampling ({s.sampler.describe()}): {per_clip:.3f} s per clip", flush=True)

    runs = study_plans.all_runs(s)
    training = sum(spec.config.steps * measured[spec.config.phase] for spec in runs)
    videos = [spec for spec in runs if spec.config.phase == "video"]
    sampling = len(videos) * s.eval_samples * per_clip
    print(
        f"estimate of `make reproduce PRESET={preset}`: {len(runs)} runs, training {training / 3600:.2f} h + "
        f"evaluation sampling {sampling / 3600:.2f} h ({len(videos)} x {s.eval_samples} clips) = "
        f"{(training + sampling) / 3600:.2f} h on this device (upper bound: smaller sizes counted at "
        f"{model}'s speed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
