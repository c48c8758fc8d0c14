#!/usr/bin/env bash
# The native-mode sweep of issue 17 (part 6) on one GPU: low.batch = 8, 64, 256, 1024 at 20 req/s,
#   A: baseline under each placement (processes, streams, shared-stream),
#   B: standalone and priority-streams,
# windows of 34 s (680 requests: enough for MLPerf LoadGen's P99 rule, 662 with none over the SLA).
# Resumable across device calls: it stops itself (SIGINT, so the sweep records what it finished)
# DEADLINE_S seconds after it starts; the same command again, with $SWEEPS carried back, goes on.
#   OUT=... SWEEPS=... DEADLINE_S=540 bash bench/gpu/run_native_sweep_h200.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/xsched-ops-gpu}"
. bench/gpu/device_prelude.sh
SWEEPS="${SWEEPS:-/tmp/xsched-ops-sweeps}"
DURATION="${DURATION:-34}"
DEADLINE_S="${DEADLINE_S:-540}"
mkdir -p "$SWEEPS"
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$OUT/gpu.csv"
python3 -c "import torch; print('torch', torch.__version__)" >> "$OUT/gpu.csv"
start=$(date +%s)
left() { echo $(( DEADLINE_S - ($(date +%s) - start) )); }
sweep() {  # NAME then sweep options
  local name=$1; shift
  local budget; budget=$(left)
  if [ "$budget" -le 60 ]; then echo "$name: not started, $budget s left" >> "$OUT/timing.txt"; return; fi
  local t0; t0=$(date +%s)
  timeout -s INT -k 30 "$budget" python3 -m xsched_ops sweep intensive --local --backend torch \
    --grid low.batch=8,64,256,1024 --repeat 1 --duration "$DURATION" --set warmup_s=2 --set drain_s=2 \
    --sweep-dir "$SWEEPS/$name" --json "$@" > "$OUT/$name.json" 2>> "$OUT/$name.log"
  echo "$name: exit $?, $(( $(date +%s) - t0 )) s" >> "$OUT/timing.txt"
}
sweep baseline-placements --grid placement=processes,streams,shared-stream --mode baseline
sweep standalone-priority --mode standalone --mode priority-streams
tar czf "$OUT/sweeps.tar.gz" -C "$SWEEPS" .
