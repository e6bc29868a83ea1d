"""Training-step throughput of our video U-Net vs video-diffusion-pytorch's Unet3D, in one run.

    .venv/bin/pip install --no-deps video-diffusion-pytorch einops-exts rotary-embedding-torch
    .venv/bin/python benchmarks/bench_unet.py                       # CPU, matched ~1.5M params, 8x32x32
    python benchmarks/bench_unet.py --device cuda --bf16 --config ucf-small --resolution 64 --frames 16

Each model runs in its own subprocess so that peak memory (CUDA: max allocated; CPU: peak RSS) is
its own. A training step = forward, EDM-style MSE loss, backward, Adam step. Unet3D's width
(``dim``) is chosen so its parameter count is the closest to ours. On CUDA the script also
counts the FLOPs of one step (torch's FlopCounterMode) and reports model FLOP utilisation against
the GPU's dense bf16 peak (``--peak-tflops``, default 989 for an H100 SXM).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types


def _stub_torchvision() -> None:
    """video-diffusion-pytorch imports torchvision at module level for GIF helpers we never call."""
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401

        return
    except Exception:
        pass
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    # Only referenced by default arguments of its GIF/dataset helpers: any callable will do.
    for name in (
        "ToTensor",
        "ToPILImage",
        "Compose",
        "Resize",
        "RandomHorizontalFlip",
        "CenterCrop",
        "Lambda",
    ):
        setattr(tv.transforms, name, lambda *a, **k: None)
    tv.utils = types.ModuleType("torchvision.utils")
    sys.modules.update(
        {"torchvision": tv, "torchvision.transforms": tv.transforms, "torchvision.utils": tv.utils}
    )


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_ours(args):
    from pyoco_lab.models import VideoUNet, get_config

    cfg = get_config(args.config, resolution=args.resolution, grad_checkpointing=args.checkpointing)
    net = VideoUNet(cfg)
    return net, lambda x, t: net(x, t)  # x: (B, F, C, H, W)


def build_theirs(args, target_params: int | None):
    _stub_torchvision()
    from einops import rearrange
    from video_diffusion_pytorch import Unet3D

    def make(dim):
        return Unet3D(dim=dim, dim_mults=(1, 2, 4), channels=3)

    dim = args.theirs_dim
    if dim is None:  # smallest |params - target| over widths divisible by the 8 GroupNorm groups
        dim = min(range(8, 257, 8), key=lambda d: abs(_count(make(d)) - target_params))
    net = make(dim)
    return net, lambda x, t: rearrange(
        net(rearrange(x, "b f c h w -> b c f h w"), t), "b c f h w -> b f c h w"
    )


def worker(args) -> dict:
    import torch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    net, fwd = build_ours(args) if args.worker == "ours" else build_theirs(args, args.target_params)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.frames, 3, args.resolution, args.resolution, device=device)
    t = torch.rand(args.batch, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def step():
        with autocast:
            loss = (fwd(x, t).float() - x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    flops = None
    if device.type == "cuda" or args.count_flops:  # counted eagerly: inductor's kernels hide from the counter
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            step()
        flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if args.compile:
        fwd = torch.compile(fwd)  # step() reads fwd when called, so it now runs the compiled one
    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {
        "params": _count(net),
        "clips_per_s": args.batch / seconds,
        "step_s": seconds,
        "peak_bytes": peak,
        "step_flops": flops,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="our config name (default: tiny)")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing in our model")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward (inductor)")
    p.add_argument("--count-flops", action="store_true", help="count FLOPs on CPU too (always on CUDA)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--theirs-dim", type=int, default=None, help="Unet3D width (default: match our params)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="GPU dense bf16 peak for MFU")
    p.add_argument("--only-ours", action="store_true", help="skip the Unet3D comparison")
    p.add_argument("--worker", choices=["ours", "theirs"], help=argparse.SUPPRESS)
    p.add_argument("--target-params", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return 0

    def run(which, extra=()):
        cmd = [
            sys.executable,
            __file__,
            *(argv if argv is not None else sys.argv[1:]),
            "--worker",
            which,
            *extra,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise SystemExit(f"{which} worker failed:\n{proc.stderr[-3000:]}")
        return json.loads(lines[-1][7:])

    results = {"ours": run("ours")}
    if not args.only_ours:
        results["video-diffusion-pytorch Unet3D"] = run(
            "theirs", ["--target-params", str(results["ours"]["params"])]
        )
    shape = f"{args.batch}x{args.frames}x3x{args.resolution}x{args.resolution}"
    print(
        f"training step, input {shape}, device {args.device}, bf16={args.bf16}, compile={args.compile}, "
        f"checkpointing={args.checkpointing}"
    )
    print(f"{'model':<32} {'params':>9} {'clips/s':>9} {'step s':>8} {'peak MiB':>9} {'MFU':>6}")
    for name, r in results.items():
        mfu = "-"
        if r["step_flops"]:
            mfu = f"{100 * r['step_flops'] / r['step_s'] / (args.peak_tflops * 1e12):5.1f}%"
        print(
            f"{name:<32} {r['params'] / 1e6:8.2f}M {r['clips_per_s']:9.2f} {r['step_s']:8.3f} "
            f"{r['peak_bytes'] / 2**20:9.0f} {mfu:>6}"
        )
    if len(results) == 2:
        theirs = results["video-diffusion-pytorch Unet3D"]
        print(f"speed ratio ours / Unet3D: {results['ours']['clips_per_s'] / theirs['clips_per_s']:.2f}x")
    if args.json:
        print("JSON " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
