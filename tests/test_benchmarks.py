"""The benchmark scripts run end to end on CPU, so they cannot fail for a silly reason on a quiet machine
or when a GPU is lent (issue "Speed"). Their numbers are not checked: benchmarks measure, tests do not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu():
    """Every part of gpu_check.sh on CPU: bf16 autocast, torch.compile, checkpointing, the standard-preset
    estimate (at the smoke preset's sizes) and the DDP part's skip message."""
    env = {**os.environ, "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_TINY": "1", "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = proc.stdout
    for section in (
        "== (a)",
        "torch.compile",
        "gradient checkpointing",
        "== (b)",
        "== (c)",
        "== (d)",
        "== summary",
        "== done",
    ):
        assert section in out, section
    assert "bf16=True, compile=True" in out and "checkpointing=True" in out
    assert "estimate of `make reproduce PRESET=smoke`" in out and "steps/s" in out
    assert "skipped:" in out  # no second GPU here


@pytest.mark.slow
def test_bench_cpu_rows_run():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_cpu.py"),
            "--quick",
            "--only",
            "quick video @16 px (now)|bare step @16 px, default|tiny image 16x16|@16 px, deis|lab features",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("loop", "step", "prec", "eval"))]
    assert len(rows) == 6 and not [row for row in rows if "failed" in row], rows
    precisions = [p for row in rows if row.startswith("prec") for p in ("fp32", "bf16") if f", {p} " in row]
    assert precisions == ["fp32", "bf16"], rows  # issue #23: both, from one process
