#!/usr/bin/env bash
# `make demo`: the main job on the embedded default. A sandbox container with the seed's broken
# XSched install (a stale libhalhip.so shadows the right one), the doctor's diagnosis, then
# fix-and-rerun of the intensive profile on the simulated device, and the report.
set -euo pipefail
cd "$(dirname "$0")/.."
XO="${XO:-.venv/bin/xsched-ops}"
NAME="${DEMO_CONTAINER:-xsched-ops-demo}"
DURATION="${DEMO_DURATION:-20}"
RESULTS="${DEMO_RESULTS:-results/demo}"

if docker ps -a --format '{{.Names}}' | grep -qx "$NAME"; then
  "$XO" sandbox rm "$NAME" >/dev/null
fi
echo "== 1/3 a sandbox with the seed's failure" >&2
"$XO" sandbox create "$NAME" --scenario seed >/dev/null
echo "== 2/3 xsched-ops doctor: why python3 dies with 'undefined symbol: _ZTIN6xsched3hip10HipCommandE'" >&2
"$XO" doctor --container "$NAME" --no-torch || true
echo "== 3/3 xsched-ops fix-and-rerun intensive (simulated device, ${DURATION} s per mode)" >&2
"$XO" fix-and-rerun intensive --container "$NAME" --backend sim --duration "$DURATION" --results-dir "$RESULTS"
report=$(ls -t "$RESULTS"/*/report.html 2>/dev/null | head -1 || true)
if [ -n "$report" ]; then
  echo "report: $report" >&2
fi
