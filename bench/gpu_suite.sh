#!/usr/bin/env bash
# One command, one GPU call: every figure t2t claims on a GPU (bench/gpu_suite.py says what).
#
#   bash bench/gpu_suite.sh [--cpu-smoke] [--out DIR] [--only STEPS] [--multi30k DIR]
#
# On the GPU machine (docs/GPU.md): the wheels it lacks (ml_collections, tensorboardX, ...) are
# carried in .whl/ and installed here with --no-deps into a private folder; t2t itself needs no
# installation (the checkout is on PYTHONPATH, as `pip install --no-deps -e .` would give).
# Results: --out, else $OUT, else ./gpu_results/. Exit status 0 only when every step passed.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if compgen -G '.whl/*.whl' > /dev/null; then
  SITE=${T2T_SITE:-/tmp/t2t_site}
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { echo "error: installing the carried wheels in .whl/ failed (see above)" >&2; exit 2; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
exec "$PYTHON" bench/gpu_suite.py "$@"
