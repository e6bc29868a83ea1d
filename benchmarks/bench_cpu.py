"""The lab's CPU costs in one run: real training steps, step variants, the peer, and the evaluation path.

    .venv/bin/python benchmarks/bench_cpu.py              # ~10 minutes on 2 idle cores
    .venv/bin/python benchmarks/bench_cpu.py --quick      # fewer steps, for a smoke check (~2 minutes)

Every row runs in its own subprocess (its own threads, peak memory and warm caches), one after the other,
so the ratios in the last column compare numbers measured in this very run on this very machine.

* **loop** rows run ``pyoco_lab.training.train`` itself (data, prior noise, EMA, logging included) for the
  presets' real configs and report the median seconds per step of its ``log.csv`` intervals after the first;
  the baseline row is the ``quick`` video finetune at 32 px, the quick preset before it moved to 16 px.
* **step** rows time a bare forward + loss + backward + Adam step of the tiny U-Net (``bench_unet.py``'s
  worker) under the usual CPU levers: threads, channels-last, ``torch.compile``, foreach Adam; and the
  ``video-diffusion-pytorch`` ``Unet3D`` peer at a matched parameter count when it is installed.
* **prec** rows time the fwd + loss + bwd + fused-Adam step of the tiny model in fp32 and under
  ``--precision bf16`` (``pyoco_lab.training.precision``: the very measurement ``--precision auto`` makes,
  fp32 and bf16 steps alternating in one process), with the ratio bf16 vs fp32; bf16 wins only on a CPU
  with native bf16 (amx_bf16 / avx512_bf16, printed first) and then more at 32 px than at 16 px.
* **eval** rows time sampling 32 clips with each sampler family, and the lab-classifier features plus
  Fréchet distances with their bootstrap intervals of one evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_unet  # noqa: E402  (its torchvision stub must precede video_diffusion_pytorch)

from pyoco_lab import devices, edm, provenance  # noqa: E402
from pyoco_lab.analysis import presets, study_runs  # noqa: E402
from pyoco_lab.analysis.notebook import ensure_data  # noqa: E402
from pyoco_lab.metrics import lab  # noqa: E402
from pyoco_lab.models import VideoUNet, count_parameters, get_config  # noqa: E402
from pyoco_lab.noise import NoisePrior  # noqa: E402
from pyoco_lab.sampling import sample_videos  # noqa: E402
from pyoco_lab.training import TrainConfig, networks, precision, train  # noqa: E402

# ----------------------------------------------------------------------------------------------------
# Workers (run in a subprocess; print one "RESULT {json}" line)


def loop_worker(spec: dict) -> dict:

    s = presets.settings(spec["preset"], resolution=spec.get("resolution"))
    ensure_data(s)
    if spec["phase"] == "image":
        base = study_runs.image_run(s, model=spec["model"]).config
        config = replace(base, **spec.get("image", {}))
        init = None
    else:
        config = study_runs.video_run(s, "progressive", 2.0, model=spec["model"]).config
        init = "image"
    config = replace(
        config,
        steps=spec["steps"],
        log_every=spec.get("log_every", 10),
        checkpoint_every=10**6,
        sample_every=0,
        num_samples=1,
        sample_steps=2,
        warmup_steps=0,
        device=spec.get("device", "auto"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        if init:  # a few image steps to inflate from (the weights do not change the cost of a step)
            image = replace(
                study_runs.image_run(s, model=spec["model"]).config,
                steps=2,
                log_every=1,
                num_samples=1,
                sample_steps=2,
                warmup_steps=0,
                device=spec.get("device", "auto"),
            )
            train(image, Path(tmp) / "image", progress=False)
            init = Path(tmp) / "image"
        run = Path(tmp) / "run"
        train(config, run, init=init, progress=False)
        rows = (Path(run) / "log.csv").read_text().splitlines()[1:]
    every = config.log_every
    intervals = [float(r.split(",")[-1]) / every for r in rows][1:]  # elapsed_s per interval; drop warm-up
    step_s = statistics.median(intervals)
    frames = config.num_frames + config.joint_images if config.phase == "video" else 1
    return {"step_s": step_s, "items_per_s": config.batch_size / step_s, "frames": frames, **_peak()}


def step_worker(spec: dict) -> dict:
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    args = argparse.Namespace(
        config="tiny",
        resolution=spec["resolution"],
        frames=9,
        batch=4,
        checkpointing=False,
        theirs_dim=None,
    )
    torch.manual_seed(0)
    if spec.get("peer"):
        net, fwd = bench_unet.build_theirs(args, spec["target_params"])
    else:
        net, fwd = bench_unet.build_ours(args)
    net.train()
    x = torch.randn(4, 9, 3, spec["resolution"], spec["resolution"])
    t = torch.rand(4)
    if spec.get("channels_last"):
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, foreach=spec.get("foreach", None))
    if spec.get("compile"):
        fwd = torch.compile(fwd)

    def step():
        loss = (fwd(x, t).float() - x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for _ in range(2):  # warm-up (and compilation)
        step()
    warmup = time.perf_counter() - started
    times = []
    for _ in range(spec["steps"]):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    step_s = statistics.median(times)
    params = sum(p.numel() for p in net.parameters())
    return {"step_s": step_s, "items_per_s": 4 / step_s, "params": params, "warmup_s": warmup, **_peak()}


def precision_worker(spec: dict) -> dict:
    """fp32 and bf16 steps of the tiny model on a (batch, [frames,] 3, res, res) batch, alternating."""
    frames = spec.get("frames")
    config = TrainConfig(
        phase="video" if frames else "image",
        model="tiny",
        resolution=spec["resolution"],
        num_frames=frames or 8,
        batch_size=spec["batch"],
    )
    torch.manual_seed(0)
    model = networks.build_network(config)
    seconds = precision.measure_step_seconds(model, config, torch.device("cpu"), spec["batch"], spec["steps"])
    items = spec["batch"] * (frames or 1)  # frames per step
    return {p: {"step_s": t, "items_per_s": items / t, **_peak()} for p, t in seconds.items()}


def eval_worker(spec: dict) -> dict:

    torch.manual_seed(0)
    res, n = spec["resolution"], spec["num"]
    if spec["what"] == "features":
        classifier = lab.LabClassifier(num_classes=11)
        clips = torch.rand(n, 8, 3, res, res) * 2 - 1
        reference = lab.lab_features(classifier, torch.rand(512, 8, 3, res, res) * 2 - 1)
        started = time.perf_counter()
        lab.lab_metrics(reference, lab.lab_features(classifier, clips))
        seconds = time.perf_counter() - started
        return {"step_s": seconds, "items_per_s": n / seconds, **_peak()}
    denoiser = edm.Denoiser(VideoUNet(get_config("tiny", resolution=res))).eval()
    options = {
        "stochastic": {"step": "rk3", "s_churn": 40.0, "s_tmin": 0.05, "s_tmax": 50.0, "s_noise": 1.003}
    }
    started = time.perf_counter()
    sample_videos(
        denoiser,
        NoisePrior("progressive", 2.0),
        (8, 3, res, res),
        n,
        sampler=spec["sampler"],
        num_steps=spec["sampler_steps"],
        sampler_options=options.get(spec["sampler"]),
        progress=False,
    )
    seconds = time.perf_counter() - started
    return {"step_s": seconds, "items_per_s": n / seconds, **_peak()}


def _peak() -> dict:
    return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # Linux: KiB


WORKERS = {"loop": loop_worker, "step": step_worker, "prec": precision_worker, "eval": eval_worker}


# ----------------------------------------------------------------------------------------------------
# The plan and the table


def plan(quick: bool) -> list[tuple[str, str, dict, dict]]:
    """(kind, row name, spec, extra environment) in the order they run."""
    loop_steps, bare_steps = (30, 3) if quick else (60, 8)
    one_thread = {"OMP_NUM_THREADS": "1"}
    rows = [
        (
            "loop",
            "quick video @32 px (before: baseline)",
            dict(preset="quick", resolution=32, phase="video", model="tiny", steps=loop_steps),
            {},
        ),
        (
            "loop",
            "quick video @16 px (now)",
            dict(preset="quick", resolution=16, phase="video", model="tiny", steps=loop_steps),
            {},
        ),
        (
            "loop",
            "quick video @16 px, 1 thread",
            dict(preset="quick", resolution=16, phase="video", model="tiny", steps=loop_steps),
            one_thread,
        ),
        (
            "loop",
            "quick image @16 px (batch 8)",
            dict(preset="quick", resolution=16, phase="image", model="tiny", steps=loop_steps),
            {},
        ),
        (
            "loop",
            "shipped-model recipe @16 px (batch 16)",
            dict(
                preset="quick",
                resolution=16,
                phase="image",
                model="tiny",
                steps=loop_steps,
                image={"batch_size": 16},
            ),
            {},
        ),
        (
            "loop",
            "cpu-long lab-m video @16 px",
            dict(preset="cpu-long", resolution=16, phase="video", model="lab-m", steps=loop_steps),
            {},
        ),
    ]
    for res in (32, 16):
        base = dict(resolution=res, steps=bare_steps)
        rows += [
            ("step", f"bare step @{res} px, default", base, {}),
            ("step", f"bare step @{res} px, channels-last", {**base, "channels_last": True}, {}),
            ("step", f"bare step @{res} px, foreach Adam", {**base, "foreach": True}, {}),
        ]
    rows.append(
        ("step", "bare step @16 px, torch.compile", dict(resolution=16, steps=bare_steps, compile=True), {})
    )
    rows.append(
        ("step", "bare step @16 px, peer Unet3D", dict(resolution=16, steps=bare_steps, peer=True), {})
    )
    prec_steps = 2 if quick else 5
    for name, size in (
        ("tiny image 16x16 batch 16", dict(resolution=16, batch=16)),
        ("tiny image 32x32 batch 16", dict(resolution=32, batch=16)),
        ("tiny video 16x16x8 batch 4", dict(resolution=16, frames=8, batch=4)),
        ("tiny video 32x32x8 batch 4", dict(resolution=32, frames=8, batch=4)),
    ):
        rows.append(("prec", f"{name}, fp32 vs bf16", {**size, "steps": prec_steps}, {}))
    num = 8 if quick else 32
    for sampler, steps in (("heun", 8), ("deis", 6), ("stochastic", 25)):
        rows.append(
            (
                "eval",
                f"sample {num} clips @16 px, {sampler} {steps} steps",
                dict(what="sample", resolution=16, num=num, sampler=sampler, sampler_steps=steps),
                {},
            )
        )
    rows.append(
        (
            "eval",
            "sample 32 clips @32 px, heun 8 steps (before)",
            dict(what="sample", resolution=32, num=num, sampler="heun", sampler_steps=8),
            {},
        )
    )
    rows.append(
        (
            "eval",
            "lab features + FVD/FD + bootstrap, 256 clips @16 px",
            dict(what="features", resolution=16, num=256),
            {},
        )
    )
    return rows


def run_row(kind: str, spec: dict, env: dict) -> dict | str:
    cmd = [sys.executable, __file__, "--worker", kind, json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed: {last[:120]}"
    return json.loads(lines[-1][7:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps and clips (a smoke check)")
    parser.add_argument(
        "--only", default=None, help="run only rows whose name contains one of these texts (separated by |)"
    )
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("spec", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.spec)
        if spec.get("peer"):
            spec["target_params"] = count_parameters(get_config("tiny"))
        print("RESULT " + json.dumps(WORKERS[args.worker](spec)))
        return 0

    wanted = args.only.split("|") if args.only else None
    rows = [r for r in plan(args.quick) if wanted is None or any(text in r[1] for text in wanted)]
    load = os.getloadavg()[0]
    print(
        f"CPU: {provenance.cpu_name()}, {os.cpu_count()} logical cores, native bf16: "
        f"{devices.cpu_native_bf16() or 'none (bf16 is emulated)'}; load average {load:.2f} at the start"
    )
    print(f"{'kind':<5} {'row':<52} {'s/step':>8} {'items/s':>9} {'peak MiB':>9} {'vs first of kind':>17}")
    firsts: dict[str, float] = {}
    for kind, name, spec, env in rows:
        result = run_row(kind, spec, env)
        if isinstance(result, str):
            print(f"{kind:<5} {name:<52} {result}", flush=True)
            continue
        if kind == "prec":  # one row per precision, the ratio against the fp32 peer of the same process
            for p in ("fp32", "bf16"):
                r = result[p]
                label = name.replace("fp32 vs bf16", p)
                print(
                    f"{kind:<5} {label:<52} {r['step_s']:8.3f} {r['items_per_s']:9.2f} {r['peak_mib']:9.0f} "
                    f"{result['fp32']['step_s'] / r['step_s']:16.2f}x",
                    flush=True,
                )
            continue
        firsts.setdefault(kind, result["step_s"])
        ratio = firsts[kind] / result["step_s"]
        extra = f"  (compile warm-up {result['warmup_s']:.0f} s)" if spec.get("compile") else ""
        print(
            f"{kind:<5} {name:<52} {result['step_s']:8.3f} {result['items_per_s']:9.2f} "
            f"{result['peak_mib']:9.0f} {ratio:16.2f}x{extra}",
            flush=True,
        )
    print("s/step: loop and step rows seconds per training step; eval rows seconds for the whole row.")
    print("vs first of kind: speed relative to the first row of the same kind (>1 = faster); prec rows:")
    print("  relative to the fp32 row of the same shape, timed alternating with it in one process.")
    print(
        f"load average {os.getloadavg()[0]:.2f} at the end (from {load:.2f}): above 0 the cores were shared "
        "with other work and the seconds are upper bounds; the ratios compare rows measured side by side."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
