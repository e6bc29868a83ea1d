#!/usr/bin/env bash
# The one-GPU check (issue "Speed", #25): run once when a GPU is lent, paste what it prints into
# docs/performance.md. About 8 minutes on one H100/H200, on a bare machine with torch and no network:
#
#   bash benchmarks/gpu_check.sh        # from the source tree: nothing is installed (PYTHONPATH = the clone)
#
# What it needs there: python with torch, einops, numpy, safetensors and the lab's other imports (checked
# first; one line names what is missing); the embedded data is built where it runs ($PYOCO_DATA, default a
# temporary folder; offline, from package-shipped imagery) at the size measured.
#
# The measurement that matters runs first and every part has its own time limit (GPU_CHECK_PART_S,
# default 900 s), so a slow torch.compile cannot eat the lease:
# (c) steps/s of the `standard` preset's image and video phases and the wall-time estimate of
#     `make reproduce PRESET=standard` (training and evaluation sampling; the notebooks' inversion and
#     image-model sampling come on top, see docs/performance.md);
# (a) Table G's 69M config (ucf-small), training step at 16x64x64 in bf16: throughput, peak memory, MFU
#     against the card's dense bf16 peak (FLOPs counted by torch.utils.flop_counter): eager, gradient
#     checkpointing, then compiled (the slowest to start);
# (b) the same for video-diffusion-pytorch's Unet3D at a matched parameter count (skipped if not installed);
# (d) a 2-process DDP smoke run when the machine has 2 GPUs.
# It ends with one table (part, status, seconds) and fails if any part did.
#
# CPU dry run of every part (what CI runs, tests/test_benchmarks.py): tiny sizes, bf16 autocast and
# torch.compile on CPU, so the script cannot fail for a silly reason when the GPU arrives:
#
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
# From the source tree: no pip install (and so no network) on the GPU machine.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYOCO_DATA=${PYOCO_DATA:-$(mktemp -d)/data}
PART_S=${GPU_CHECK_PART_S:-900}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
PEAK=${GPU_CHECK_PEAK_TFLOPS:-989}  # dense bf16 TFLOP/s: H100 SXM 989; H200 989 (same compute die)
if [[ -n "${GPU_CHECK_TINY:-}" ]]; then
  MODEL=(--config tiny --resolution 16 --frames 4 --batch 2 --steps 2 --warmup 1)
  LOOP=(--tiny)
else
  MODEL=(--config ucf-small --resolution 64 --frames 16 --batch 8 --steps 10 --warmup 3)
  LOOP=()
fi
COMMON=(--device "$DEVICE" --bf16 --peak-tflops "$PEAK" --count-flops)

echo "== preflight"
"$PY" - <<'PYEOF'
import importlib.util, os, sys
needed = ["torch", "einops", "numpy", "safetensors", "tensorboard", "matplotlib", "PIL", "tqdm"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages {missing}; install them from wheels copied to this "
             "machine (pip install --no-index --find-links WHEELS ...), then rerun")
print("imports ok:", ", ".join(needed), "| data at", os.environ["PYOCO_DATA"])
PYEOF

NAMES=()
STATUS=()
TAKEN=()
part() {  # part NAME CMD...: CMD under the part time limit; record status and seconds; never abort
  local name=$1 start=$SECONDS rc=0 status=ok
  shift
  timeout "$PART_S" "$@" || rc=$?
  if [[ $rc == 124 ]]; then status="timeout (${PART_S} s)"; elif [[ $rc != 0 ]]; then status="failed (rc $rc)"; fi
  NAMES+=("$name")
  STATUS+=("$status")
  TAKEN+=($((SECONDS - start)))
}

echo "== machine"
"$PY" - <<'PYEOF'
import platform, torch
print("torch", torch.__version__, "python", platform.python_version())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        print(f"cuda:{i}", torch.cuda.get_device_name(i))
else:
    print("no CUDA device: dry run on", platform.processor() or platform.machine())
PYEOF

echo "== (c) standard preset: image and video phase steps/s, and the reproduce estimate"
part "(c) standard preset + estimate" "$PY" benchmarks/gpu_check.py --device "$DEVICE" "${LOOP[@]}"

echo "== (a) Table G config, bf16: eager"
part "(a) eager" "$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}" --only-ours
echo "== (a) Table G config, bf16: gradient checkpointing"
part "(a) gradient checkpointing" "$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}" --only-ours \
  --checkpointing
echo "== (a) Table G config, bf16: torch.compile"
part "(a) torch.compile" "$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}" --only-ours --compile

echo "== (b) ours vs video-diffusion-pytorch Unet3D at matched parameters, bf16"
if "$PY" -c "import video_diffusion_pytorch" 2>/dev/null; then
  part "(b) ours vs Unet3D" "$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}"
else
  echo "skipped: video-diffusion-pytorch is not installed (pip install --no-deps video-diffusion-pytorch einops-exts rotary-embedding-torch)"
fi

echo "== (d) 2-process DDP smoke run"
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [[ "$DEVICE" == cuda && "$GPUS" -ge 2 ]]; then
  OUT=$(mktemp -d)
  part "(d) DDP smoke" "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m pyoco_lab.cli train \
    --preset quick --phase image --steps 20 --batch-size 8 --log-every 5 --out "$OUT/ddp"
  echo "DDP smoke run: $OUT/ddp"
else
  echo "skipped: $GPUS CUDA device(s) on $DEVICE (needs 2)"
fi

echo "== summary"
printf '%-32s %-18s %s\n' part status seconds
FAILED=0
for i in "${!NAMES[@]}"; do
  printf '%-32s %-18s %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${TAKEN[$i]}"
  [[ ${STATUS[$i]} == ok ]] || FAILED=1
done
echo "== done"
exit $FAILED
