#!/usr/bin/env bash
# Cell benchmarks on a CUDA GPU under KERAS_BACKEND=jax, with torch.nn.LSTM/GRU (cuDNN) as the
# hardware anchor; then the same cells under KERAS_BACKEND=torch. Under 5 minutes.
# Writes $OUT/gpu_results.md (both tables) when $OUT is set, else prints.
#   bash benchmarks/gpu.sh               # on the GPU machine (JAX + PyTorch, no TensorFlow)
#   bash benchmarks/gpu.sh --cpu-smoke   # tiny sizes on CPU, to test the script anywhere
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Keras and its pure-python deps from .whl/ (see docs/performance.md); a wheel is installed only
# when its module is missing, so the machine's own ml_dtypes/optree/... (pinned by jax) stay.
if [ -d .whl ]; then
  for wheel in .whl/*.whl; do
    dist=$(basename "$wheel" | cut -d- -f1)
    case "$dist" in
      absl_py) module=absl ;; markdown_it_py) module=markdown_it ;; keras) module=__force__ ;;
      *) module=$dist ;;
    esac
    if [ "$module" = __force__ ] || ! "$PY" -c "import $module" 2>/dev/null; then
      "$PY" -m pip install -q --no-index --no-deps --target /tmp/site "$wheel" \
        || echo "gpu.sh: could not install $wheel (continuing)" >&2
    fi
  done
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
if [ "${1:-}" = "--cpu-smoke" ]; then export JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES=""; fi
# JAX first (the main table), then the PyTorch backend; each writes its own table as it goes,
# so a timeout keeps what was measured. 200 + 80 s keeps the whole script under 5 minutes.
status=0
KERAS_BACKEND=jax timeout 200 "$PY" -m benchmarks.gpu "$@" || status=$?
KERAS_BACKEND=torch timeout 80 "$PY" -m benchmarks.gpu "$@" || status=$?
if [ -n "${OUT:-}" ]; then
  cat "$OUT"/gpu_results_jax.md "$OUT"/gpu_results_torch.md > "$OUT/gpu_results.md" 2>/dev/null || true
fi
exit $status
