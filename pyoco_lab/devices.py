"""The one device rule: where a run, a loaded model, its noise and its sampling live.

Every path a run touches goes through here, so a GPU is used wherever one is asked for (or, with
``auto``, wherever there is one) and never silently left idle while the CPU samples:

- :func:`validate_device` checks what a user typed (``--device``) before anything is loaded;
- :func:`resolve_device` turns ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` into a device (``auto`` and a
  bare ``cuda`` mean this ``torchrun`` rank's GPU, ``LOCAL_RANK``);
- :func:`device_of` is where a model lives -- helpers that take a model compute there;
- :func:`draw_device` is where noise from a generator is drawn (the generator's own device);
- :func:`sampling_mode` switches on the fast CUDA paths (TF32 matmuls and convolutions, cuDNN
  autotuning) for sampling only, and restores the previous settings afterwards;
- :func:`cpu_native_bf16` says whether this CPU computes bf16 natively (``--precision auto`` asks it).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import torch

# CPU flags (as /proc/cpuinfo names them) of native bf16 arithmetic: Intel AMX tiles and AVX-512 BF16 on
# x86, the BF16 extension of Armv8.6 on aarch64. Without one, oneDNN emulates bf16 with fp32 conversions
# and a bf16 step is no faster than fp32, often slower (issue #23 measured 1.1-1.4x only on amx_bf16).
# torch.backends.cpu.get_cpu_capability() does not tell: it says "AVX512" with or without them.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
CPUINFO = "/proc/cpuinfo"
_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")


def validate_device(requested: str | torch.device) -> torch.device:
    """``auto`` (cuda if available, else cpu), ``cpu``, ``cuda`` or ``cuda:N`` → a usable device.

    Anything else raises ``ValueError`` naming the option and the fix, before anything is loaded.
    (:func:`resolve_device` picks a rank's device under torchrun and lets ``gpu0`` or
    ``cuda:7`` on a one-GPU machine through to torch's own errors, hence this function.)
    """
    text = str(requested).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = _DEVICE.fullmatch(text)
    if match is None or (match[1] == "cpu" and match[2] not in (None, "0")):
        raise ValueError(f"--device {requested!r} is not a device; pass auto, cpu, cuda or cuda:N")
    if match[1] == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {requested!r}: CUDA is not available here; pass --device cpu (or auto)")
    count = torch.cuda.device_count()
    if match[2] is not None and int(match[2]) >= count:
        raise ValueError(
            f"--device {requested!r}: this machine has {count} CUDA device(s); "
            f"pass --device cuda:0 to cuda:{count - 1} (or auto)"
        )
    return torch.device(text)


def resolve_device(requested: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; refuse CUDA that is not there."""
    rank = int(os.environ.get("LOCAL_RANK", 0)) if local_rank is None else local_rank
    if str(requested) == "auto":
        return torch.device(f"cuda:{rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(requested)!r} requested but CUDA is not available; pass --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{rank}")
    return device


def device_of(model) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a plain function or a weightless module)."""
    if isinstance(model, torch.nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


def draw_device(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device | None:
    """Where noise from ``generator`` is drawn: on the generator's own device, else on ``device``.

    The one rule for every sampler's noise: a CUDA generator draws on the GPU (no copy), a CPU
    generator draws on the CPU (the same numbers whatever device samples) and the noise then moves to
    the sample's device -- never a generator asked to draw on a device it does not live on (CUDA
    raises on that).
    """
    return generator.device if generator is not None else device


def cpu_native_bf16(cpuinfo: str = CPUINFO) -> str | None:
    """The first flag of :data:`NATIVE_BF16_FLAGS` this CPU has (e.g. "amx_bf16"), None without one.

    Read from the ``flags`` (x86) or ``Features`` (aarch64) line of ``/proc/cpuinfo``; None where that file
    does not exist (macOS, Windows): there ``--precision auto`` stays fp32 on the CPU.
    """
    try:
        text = open(cpuinfo).read()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


@contextlib.contextmanager
def sampling_mode(device: torch.device | str) -> Iterator[None]:
    """TF32 matmuls / convolutions and cuDNN autotuning while sampling on CUDA; the previous settings after.

    Sampling has no bitwise contract (training's determinism is switched per run in the training loop),
    and fp32 with TF32 off is several times slower on Ampere and later GPUs. On the CPU nothing changes.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved
