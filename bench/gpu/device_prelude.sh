# Sourced by the device-call scripts (after they set OUT): $OUT made, the wheels carried in .whl/ installed (the device
# has no network), and this checkout importable.
: "${OUT:?set OUT before sourcing}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
xo() { python3 -m xsched_ops "$@"; }
