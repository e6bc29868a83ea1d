"""Estimates, not measurements: FLOPs and activation memory of one training step per preset, counted on
the meta device (no weights, no data, seconds on any CPU).

    python benchmarks/estimate_flops.py            # the table of docs/performance.md, "Estimates"

Per preset and phase, for one item of the batch (a frame for the image phase; a clip of F frames plus the
appended images for the video phase): forward + backward FLOPs of the denoising loss as counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls; element-wise ops are not counted),
and the bytes autograd saves for the backward pass (``saved_tensors_hooks``) in fp32 -- bf16 autocast
saves roughly half of the matmul and convolution inputs, so the true figure lies between half and all of
it. The step's FLOPs are the per-item figure times the global batch (``pyoco_lab.training.compute``).
"""

from __future__ import annotations

import sys

from pyoco_lab.training import compute, preset_config

PRESETS = ("standard", "ucf-small", "ucf-medium", "ucf-large")


def main() -> int:
    print("| preset | phase | model | item | batch | TFLOP / step | GiB saved per item (fp32) |", end="")
    print(" GiB per batch (fp32) |")
    print("|---|---|---|---|---|---|---|---|")
    for preset in PRESETS:
        for phase in ("image", "video"):
            config = preset_config(preset, phase)
            flops, saved = compute.item_cost(config)
            item = (
                f"{config.num_frames}+{config.joint_images} frames" if phase == "video" else "1 frame"
            ) + f" @{config.resolution}"
            print(
                f"| {preset} | {phase} | {config.model} | {item} | {config.batch_size} | "
                f"{flops * config.batch_size / 1e12:.2f} | {saved / 2**30:.2f} | "
                f"{saved * config.batch_size / 2**30:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
