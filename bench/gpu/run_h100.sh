#!/usr/bin/env bash
# The real-GPU run (issue 6): one device call runs this end to end and writes under $OUT.
#   PROFILES="original intensive" REPEATS=3 DURATION=40 bash bench/gpu/run_h100.sh
# Modes and placements available without XSched: standalone; baseline with placements
# processes, streams and shared-stream; priority-streams. Repeats interleave the modes.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/xsched-ops-gpu}"
. bench/gpu/device_prelude.sh
PROFILES="${PROFILES:-intensive original}"
REPEATS="${REPEATS:-3}"
DURATION="${DURATION:-40}"
RESULTS="${RESULTS:-/tmp/xsched-ops-gpu-results}"
mkdir -p "$RESULTS"

# With an XSched CUDA build (XSCHED_PREFIX=/path/to/install), the xsched mode runs too, through
# the libpath route (lib folder first, XSCHED_CUDA_LIB at the real driver); without one, only the
# modes that need no XSched.
xsched_args=()
xsched_combos=""
if [ -n "${XSCHED_PREFIX:-}" ]; then
  xsched_args=(--xsched-prefix "$XSCHED_PREFIX" --platform cuda --route libpath)
  xsched_combos="xsched:processes"
else
  echo "run_h100: no XSched install given (XSCHED_PREFIX unset): running the native modes only" >&2
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.csv"
python3 -c "import torch, torchvision; print(torch.__version__, torch.version.cuda, torchvision.__version__)" > "$OUT/versions.txt"
xo doctor --local --platform cuda "${xsched_args[@]}" --json > "$OUT/doctor_local.json" 2> "$OUT/doctor_local.log"
bare_loop() { python3 bench/gpu/bare_loop.py --iterations "${BARE_ITERATIONS:-800}" >> "$OUT/bare_loop.jsonl"; }
bare_loop

status=0
for profile in $PROFILES; do
  repeats=1
  [ "$profile" = intensive ] && repeats="$REPEATS"
  for repeat in $(seq 1 "$repeats"); do
    for combo in standalone:processes baseline:processes baseline:streams baseline:shared-stream priority-streams:- $xsched_combos; do
      mode="${combo%%:*}"; placement="${combo##*:}"
      placement_args=()
      [ "$placement" != "-" ] && placement_args=(--placement "$placement")
      echo "== $profile repeat $repeat: $mode ($placement)" >&2
      xo run "$profile" --local --backend torch --mode "$mode" "${placement_args[@]}" "${xsched_args[@]}" \
        --duration "$DURATION" --results-dir "$RESULTS" --no-report --json \
        >> "$OUT/runs.jsonl" 2>> "$OUT/runs.log" || status=1
      # The harness check: the bare loop again right after each standalone run, side by side.
      [ "$mode" = standalone ] && bare_loop
      # Archive after every run: a call cut off at its time limit still brings back what ran.
      tar czf "$OUT/results.tar.gz" -C "$RESULTS" .
    done
  done
done
# $OUT keeps at most 8 files two folders deep: the whole results tree travels as one archive.
tar czf "$OUT/results.tar.gz" -C "$RESULTS" .
exit $status
