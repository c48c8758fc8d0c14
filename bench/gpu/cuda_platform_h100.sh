#!/usr/bin/env bash
# Issue 8 on the H100: the CUDA platform of xsched-ops against a real NVIDIA driver, in one
# device call. Everything lands under $OUT.
#   1. `doctor --local --platform cuda` with no XSched install: GPU, driver, CUDA, torch.
#   2. The project's XSched-like CUDA install (docker/xsched-like, compiled here with g++) at
#      $XS_PREFIX: its HAL forwards cuInit to the real driver, which is what lets the libpath
#      route be checked end to end on a real driver. It is NOT XSched: it schedules nothing.
#   3. `env --platform cuda` for that install: the lib folder first, XSCHED_CUDA_LIB at the real
#      driver the target has (ldconfig -p, /usr/local/nvidia/lib64, the system folders).
#   4. `doctor --platform cuda --xsched-prefix` for it (ground truth: a real process loads
#      libcuda.so.1 and gets the shim, with the real driver reachable).
#   5. A process started with env's output loads libcuda.so.1 by name and calls cuInit(0):
#      through the shim and the HAL it reaches the real driver (0 = CUDA_SUCCESS).
#   6. A simulated run (backend sim, labelled so) in mode xsched through the libpath route: the
#      role processes load libcuda.so.1 like an application and report where cuInit came from.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/xsched-ops-cuda}"
. bench/gpu/device_prelude.sh
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.csv"
(ldconfig -p | grep -E 'libcuda\.so' ; ls -l /usr/local/nvidia/lib64 2>&1 | head -5) > "$OUT/driver_files.txt"
xo doctor --local --platform cuda --json > "$OUT/doctor_no_install.json" 2> "$OUT/doctor_no_install.log"
echo "doctor (no install): exit $?" >> "$OUT/steps.txt"

XS_BUILD=/tmp/xs-build
XS_PREFIX=/tmp/xs-build/install-cuda
if ! command -v g++ > /dev/null; then
  echo "no g++ on this machine: the XSched-like install cannot be built; steps 2-6 skipped" | tee -a "$OUT/steps.txt"
  exit "$status"
fi
sh docker/xsched-like/build.sh "$XS_BUILD" "$XS_PREFIX" > "$OUT/build.log" 2>&1 || { echo "build failed" >> "$OUT/steps.txt"; exit 1; }

xo env --local --platform cuda --xsched-prefix "$XS_PREFIX" --format json --full > "$OUT/env.json" 2> "$OUT/env.log"
echo "env: exit $?" >> "$OUT/steps.txt"
xo doctor --local --platform cuda --xsched-prefix "$XS_PREFIX" --json > "$OUT/doctor_with_install.json" 2> "$OUT/doctor_with_install.log"
echo "doctor (with install): exit $?" >> "$OUT/steps.txt"

python3 - "$OUT/env.json" > "$OUT/cuinit_through_shim.json" 2>> "$OUT/steps.txt" <<'EOF'
import json, os, subprocess, sys
env = json.load(open(sys.argv[1]))
env = env.get("env", env)
script = r'''
import ctypes, json, os
lib = ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
rc = lib.cuInit(0)
maps = [line.split(None, 5)[5].strip() for line in open("/proc/self/maps") if len(line.split(None, 5)) == 6]
print(json.dumps({"cuInit": rc, "XSCHED_CUDA_LIB": os.environ.get("XSCHED_CUDA_LIB"),
                  "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"),
                  "mapped": sorted({p for p in maps if "libcuda" in p or "libshim" in p or "libhal" in p})}))
'''
full = {**{k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}, **env}
result = subprocess.run([sys.executable, "-c", script], env=full, capture_output=True, text=True)
print(result.stdout.strip() or json.dumps({"exit": result.returncode, "stderr": result.stderr[-2000:]}))
EOF

xo run intensive --local --backend sim --mode xsched --platform cuda --xsched-prefix "$XS_PREFIX" --repair-env \
  --duration 10 --set warmup_s=1 --set drain_s=2 --results-dir /tmp/xs-results --no-report --json \
  > "$OUT/sim_run.json" 2> "$OUT/sim_run.log" || status=1
echo "sim run: exit $status" >> "$OUT/steps.txt"
tar czf "$OUT/sim_results.tar.gz" -C /tmp/xs-results .
exit "$status"
