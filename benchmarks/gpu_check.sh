#!/usr/bin/env bash
# The one-GPU check (issue "Speed"): run once when a GPU is lent, paste what it prints into
# docs/performance.md. About 8 minutes on one H100/H200:
#
#   bash benchmarks/gpu_check.sh                 # needs: pip install -e . (and, for (b), the bench peers)
#
# (a) Table G's 69M config (ucf-small), training step at 16x64x64 in bf16: throughput, peak memory, MFU
#     against the card's dense bf16 peak (FLOPs counted by torch.utils.flop_counter), eager / compiled /
#     gradient checkpointing;
# (b) the same for video-diffusion-pytorch's Unet3D at a matched parameter count (skipped if not installed);
# (c) steps/s of the `standard` preset's image and video phases and the wall-time estimate of
#     `make reproduce PRESET=standard`;
# (d) a 2-process DDP smoke run when the machine has 2 GPUs.
#
# CPU dry run of every part (what CI runs, tests/test_benchmarks.py): tiny sizes, bf16 autocast and
# torch.compile on CPU, so the script cannot fail for a silly reason when the GPU arrives:
#
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
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

echo "== machine"
"$PY" - <<'EOF'
import platform, torch
print("torch", torch.__version__, "python", platform.python_version())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        print(f"cuda:{i}", torch.cuda.get_device_name(i))
else:
    print("no CUDA device: dry run on", platform.processor() or platform.machine())
EOF

echo "== (a) Table G config, bf16: eager"
"$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}" --only-ours
echo "== (a) Table G config, bf16: torch.compile"
"$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}" --only-ours --compile
echo "== (a) Table G config, bf16: gradient checkpointing"
"$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}" --only-ours --checkpointing

echo "== (b) ours vs video-diffusion-pytorch Unet3D at matched parameters, bf16"
if "$PY" -c "import video_diffusion_pytorch" 2>/dev/null; then
  "$PY" benchmarks/bench_unet.py "${MODEL[@]}" "${COMMON[@]}"
else
  echo "skipped: video-diffusion-pytorch is not installed (pip install --no-deps video-diffusion-pytorch einops-exts rotary-embedding-torch)"
fi

echo "== (c) standard preset: image and video phase steps/s, and the reproduce estimate"
"$PY" benchmarks/gpu_check.py --device "$DEVICE" "${LOOP[@]}"

echo "== (d) 2-process DDP smoke run"
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [[ "$DEVICE" == cuda && "$GPUS" -ge 2 ]]; then
  OUT=$(mktemp -d)
  "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m pyoco_lab.cli train --preset quick \
    --phase image --steps 20 --batch-size 8 --log-every 5 --out "$OUT/ddp"
  echo "DDP smoke run finished: $OUT/ddp"
else
  echo "skipped: $GPUS CUDA device(s) on $DEVICE (needs 2)"
fi
echo "== done"
