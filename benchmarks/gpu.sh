#!/usr/bin/env bash
# Cell benchmarks on a CUDA GPU under KERAS_BACKEND=jax, with torch.nn.LSTM/GRU (cuDNN) as the
# hardware anchor. Under 4 minutes. Writes $OUT/gpu_results.md when $OUT is set, else prints.
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
export KERAS_BACKEND=jax

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
if [ "${1:-}" = "--cpu-smoke" ]; then export JAX_PLATFORMS=cpu; fi
exec timeout 230 "$PY" -m benchmarks.gpu "$@"
