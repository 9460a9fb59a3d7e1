#!/bin/bash
# One prepared session on a lent CUDA machine (run from the repository root; results under $OUT):
# GPU correctness checks, where an epoch of E = 145 goes (host or device), the paper-scale E1 grid's
# wall time, and the benchmark table (its stores stay there; the reproduction was brought back once).
# Needs the zarr/xarray wheels in .whl (see docs/performance.md). Budget: about 9 minutes.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
LOGS=/tmp/logs; mkdir -p $LOGS  # packed into one file at the end: at most 8 files come back
DEADLINE=$(( $(date +%s) + ${BUDGET_S:-520} ))
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
left() { echo $(( DEADLINE - $(date +%s) )); }
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.txt, print its wall time
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$LOGS/$name.txt" 2>&1
  local rc=$?
  echo "== $name: rc $rc, $(( $(date +%s) - t0 )) s" | tee -a "$LOGS/$name.txt" "$LOGS/times.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, numpy, xarray, zarr; print('torch', torch.__version__, 'numpy', numpy.__version__,
'xarray', xarray.__version__, 'zarr', zarr.__version__)"; nproc; } > "$LOGS/env.txt" 2>&1
cat "$LOGS/env.txt"
step check 100 python3 benchmarks/gpu_check.py
tail -14 "$LOGS/check.txt"
if grep -q "^FAIL .*graphs" "$LOGS/check.txt"; then export RANDSTRUCT_CUDA_GRAPHS=0; echo "graphs OFF"; fi
step profile 90 python3 benchmarks/gpu_profile.py
head -12 "$LOGS/profile.txt"
# E1 before the bench: a bench cut short still leaves the rows it logged, an E1 cut short leaves no
# wall time (the first device session's bench ran out of its slot before the N = 1024 rows anyway).
step e1 $(( $(left) > 360 ? 240 : $(left) - 120 )) python3 -m randstruct experiment nonlinear --scale paper --device cuda \
  --out /tmp/paper/runs --no-progress
tail -5 "$LOGS/e1.txt"
step bench $(( $(left) - 10 )) python3 -m randstruct bench --device cuda --epochs 30 --json "$LOGS/bench.json"
cat "$LOGS/bench.txt"
tar czf "$OUT/logs.tgz" -C $LOGS .
ls -la "$OUT"
