"""The run's arithmetic precision: where bf16 autocast applies, and what ``--precision auto`` picks.

``bf16`` autocasts the network's forward pass (and so its backward) to bfloat16, on CUDA and on the CPU
alike. Everything else stays float32: the parameters (autocast casts a copy of each weight per op, the
master weights and their gradients are fp32), the EDM preconditioning (``edm.Denoiser`` takes x and
sigma in fp32 and casts the network output back to fp32 before c_skip x + c_out F), the loss, the EMA and
the Adam moments. No loss scaling: bf16 has fp32's exponent range.

``auto`` resolves once, at the start of a fresh run (a resumed run keeps what its ``config.json``
records): bf16 on a GPU with bf16 support; on the CPU bf16 only where the processor computes it natively
(:func:`pyoco_lab.devices.cpu_native_bf16`) *and* a few fwd+bwd+Adam steps of this very model, measured
here, are faster in bf16 -- a CPU with native bf16 still loses on small layers (1.12x at 16 px against
1.4x at 32 px, docs/performance.md), and one without it emulates bf16 at a loss.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pyoco_lab import devices, edm
from pyoco_lab.training import batches
from pyoco_lab.training.config import TrainConfig

# bf16 must beat fp32 by this factor for ``auto`` to pick it: a margin over the noise of a few-step
# measurement on shared cores, so a tie does not flip a run's numerics between machines by chance.
AUTO_MIN_SPEEDUP = 1.05
# Steps timed per precision by ``auto`` after one warm-up step each, alternating fp32 / bf16 so that a
# load change on shared cores hits both alike; the median of each is compared.
AUTO_TIMED_STEPS = 3


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """bf16 autocast on ``device`` (CPU or CUDA) for ``precision == "bf16"``, a disabled one for fp32."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision {precision!r} is not resolved; expected 'fp32' or 'bf16'")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def network_call(denoiser: Callable, precision: str, device: torch.device) -> Callable:
    """``denoiser`` run under the precision's autocast: the network (and its backward) in bf16, while
    the loss computed from its fp32 output (``edm.edm_loss``) stays outside autocast."""
    cast = autocast(precision, device)

    def forward(x: torch.Tensor, sigma: torch.Tensor, **cond) -> torch.Tensor:
        with cast:
            return denoiser(x, sigma, **cond)

    return forward


@dataclass(frozen=True)
class Choice:
    """What ``auto`` picked, and why (``seconds``: median s/step of each precision when measured)."""

    precision: str
    reason: str
    seconds: dict[str, float] | None = None

    def message(self) -> str:
        return f"--precision auto -> {self.precision}: {self.reason}"


def measure_step_seconds(
    model: torch.nn.Module,
    config: TrainConfig,
    device: torch.device,
    rows: int,
    steps: int = AUTO_TIMED_STEPS,
) -> dict[str, float]:
    """Median seconds of one fwd + loss + bwd + Adam step of a copy of ``model`` on a random micro-batch
    of the run's shape (``rows`` items), for fp32 and bf16. The run's model, optimiser and random streams
    are untouched (a copy, its own Adam, a forked RNG)."""
    frames = config.num_frames + config.joint_images if config.phase == "video" else None
    shape = (rows, 3, config.resolution, config.resolution)
    if frames is not None:
        shape = (rows, frames, *shape[1:])
    probe = copy.deepcopy(model).train()
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-6, fused=True)  # the loop's fused Adam
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        x = torch.rand(shape, device=device) * 2 - 1
        eps = torch.randn(shape, device=device)
        sigma = edm.sample_training_sigma(rows, device=device)
        cond = batches.network_conditioning(None, config.num_frames if frames else None, x)
        stage = batches.stage_condition(config, x)
        if stage is not None:
            cond["cond"] = stage

        def step(precision: str) -> float:
            started = time.perf_counter()
            forward = network_call(probe, precision, device)
            loss = edm.edm_loss(forward, x, eps, sigma, probe.sigma_data, **cond).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - started

        for precision in times:  # warm-up: oneDNN builds its kernels on the first call of each shape
            step(precision)
        for _ in range(steps):
            for precision in times:
                times[precision].append(step(precision))
    return {precision: statistics.median(t) for precision, t in times.items()}


# Measured on a 2-core AMD EPYC without native bf16 (AVX2 only), the cpu-32 finetune (tiny U-Net, 32 px,
# 4 clips of 8 frames + 1 image): bf16 14 s per step, fp32 1.2-1.4 s (figures/cpu-32/RUN.md, part 8).
EMULATED_BF16_SLOWDOWN = "10-12x slower than fp32: 14 s vs 1.2-1.4 s per step of the cpu-32 finetune"


def emulated_bf16(precision: str, device: torch.device, cpu_flag: str | None = None) -> bool:
    """True when ``precision`` is bf16 on a CPU that does not compute bf16 natively: autocast still works,
    but every bf16 op is emulated, an order of magnitude slower than fp32 (:data:`EMULATED_BF16_SLOWDOWN`).
    ``cpu_flag``: the CPU's native-bf16 flag (default: :func:`pyoco_lab.devices.cpu_native_bf16`)."""
    if precision != "bf16" or torch.device(device).type != "cpu":
        return False
    return not (devices.cpu_native_bf16() if cpu_flag is None else cpu_flag)


def emulated_bf16_warning() -> str:
    """The one line a bf16 run on a CPU without native bf16 prints before its first step."""
    return (
        "warning: --precision bf16 on a CPU without native bf16 (no amx_bf16 / avx512_bf16 flag): bf16 is "
        f"emulated, {EMULATED_BF16_SLOWDOWN}; pass --precision fp32 (or auto) unless the run must match "
        "bf16 records"
    )


def choose_precision(
    model: torch.nn.Module, config: TrainConfig, device: torch.device, rows: int, cpu_flag: str | None = None
) -> Choice:
    """Resolve ``--precision auto`` for ``model`` on ``device`` (``rows``: a micro-batch's items).

    ``cpu_flag``: the CPU's native-bf16 flag (default: :func:`pyoco_lab.devices.cpu_native_bf16`)."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return Choice("bf16", f"{torch.cuda.get_device_name(device)} computes bf16 natively")
        return Choice("fp32", f"{torch.cuda.get_device_name(device)} has no native bf16")
    if device.type != "cpu":
        return Choice("fp32", f"bf16 is only chosen automatically on CPU and CUDA, not {device.type}")
    flag = devices.cpu_native_bf16() if cpu_flag is None else cpu_flag
    if not flag:
        return Choice(
            "fp32", "this CPU has no native bf16 (no amx_bf16 / avx512_bf16 flag): bf16 is emulated"
        )
    seconds = measure_step_seconds(model, config, device, rows)
    speedup = seconds["fp32"] / seconds["bf16"]
    timing = (
        f"{flag} CPU; fwd+bwd+Adam of this model on a {rows}-item micro-batch: fp32 {seconds['fp32']:.3f} s, "
        f"bf16 {seconds['bf16']:.3f} s per step ({speedup:.2f}x"
    )
    if speedup >= AUTO_MIN_SPEEDUP:
        return Choice("bf16", f"{timing}, bf16 faster)", seconds)
    return Choice("fp32", f"{timing}, under the {AUTO_MIN_SPEEDUP:.2f}x needed for bf16)", seconds)
