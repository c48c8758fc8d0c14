#!/usr/bin/env bash
# NVIDIA MPS as a placement (issue 19), native modes only (no XSched build on the device): one
# device call runs this end to end and writes under $OUT.
#   PROFILE=intensive REPEATS=2 DURATION=20 bash bench/gpu/run_mps_h200.sh
#   PROFILE=llm-decode COMBOS="processes:standalone baseline;mps:standalone baseline" bash bench/gpu/run_mps_h200.sh
# Per repeat, interleaved: placement processes (standalone, baseline, priority-streams), then
# placement mps (standalone, baseline), each as one `xsched-ops run`.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/xsched-ops-gpu}"
. bench/gpu/device_prelude.sh
PROFILE="${PROFILE:-intensive}"
REPEATS="${REPEATS:-2}"
DURATION="${DURATION-20}"  # empty: the profile's own
RESULTS="${RESULTS:-/tmp/xsched-ops-gpu-results}"
mkdir -p "$RESULTS"

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_mode --format=csv,noheader > "$OUT/gpu.csv"
python3 -c "import torch, torchvision; print(torch.__version__, torch.version.cuda, torchvision.__version__)" > "$OUT/versions.txt"
command -v nvidia-cuda-mps-control >> "$OUT/versions.txt" 2>&1
xo doctor --local --platform cuda --json > "$OUT/doctor_local.json" 2> "$OUT/doctor_local.log"

COMBOS="${COMBOS:-processes:standalone baseline priority-streams;mps:standalone baseline}"
IFS=';' read -r -a combos <<< "$COMBOS"
status=0
for repeat in $(seq 1 "$REPEATS"); do
  for combo in "${combos[@]}"; do
    placement="${combo%%:*}"; modes=()
    for mode in ${combo#*:}; do modes+=(--mode "$mode"); done
    echo "== $PROFILE repeat $repeat: placement $placement, ${combo#*:}" >&2
    xo run "$PROFILE" --local --backend torch --placement "$placement" "${modes[@]}" \
      ${DURATION:+--duration "$DURATION"} --results-dir "$RESULTS" --no-report --json \
      >> "$OUT/runs.jsonl" 2>> "$OUT/runs.log" || status=1
    tar czf "$OUT/results.tar.gz" -C "$RESULTS" .
  done
done
exit $status
