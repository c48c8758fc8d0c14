#!/usr/bin/env bash
# A native sweep over the background batch on one GPU (issues 17 and 18): one device call.
#   GPUS=0 DURATION=10 bash bench/gpu/run_sweep_h200.sh
# Cells low.batch = 8, 64, 256, 1024; modes standalone, baseline (processes), priority-streams;
# intensive's 20 req/s. The same command is given twice: the second must skip every valid cell.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/xsched-ops-gpu}"
. bench/gpu/device_prelude.sh
GPUS="${GPUS:-0}"
DURATION="${DURATION:-10}"
SWEEP="${SWEEP:-/tmp/xsched-ops-sweep}"
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$OUT/gpu.csv"
sweep() {
  xo sweep intensive --local --backend torch --gpus "$GPUS" --grid low.batch=8,64,256,1024 \
    --mode standalone --mode baseline --mode priority-streams --duration "$DURATION" \
    --set warmup_s=2 --set drain_s=2 --sweep-dir "$SWEEP" "$@"
}
start=$(date +%s)
sweep --json > "$OUT/sweep.json" 2> "$OUT/sweep.log"; status=$?
echo "first pass: exit $status, $(( $(date +%s) - start )) s" >> "$OUT/timing.txt"
start=$(date +%s)
sweep > "$OUT/sweep_resume.txt" 2>> "$OUT/sweep.log"
echo "second pass (resume): exit $?, $(( $(date +%s) - start )) s" >> "$OUT/timing.txt"
tar czf "$OUT/sweep.tar.gz" -C "$SWEEP" .
exit $status
