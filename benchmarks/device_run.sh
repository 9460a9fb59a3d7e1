#!/bin/bash
# One prepared session on a lent CUDA machine (run from the repository root; results under $OUT):
# GPU correctness checks, the benchmark table, the paper-scale E1 grid's wall time, and the
# paper-scale reproduction of Figs 1-4 (+ S2-S5) with its claims report.
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
step e1 200 python3 -m randstruct experiment nonlinear --scale paper --device cuda --out /tmp/paper/runs --no-progress
tail -5 "$LOGS/e1.txt"
step reproduce $(( $(left) - 120 )) python3 -m randstruct reproduce fig1 fig2 fig3 fig4 figS2 figS3 figS4 figS5 \
  --scale paper --device cuda --out /tmp/paper --no-progress
cat /tmp/paper/claims.md 2>/dev/null | cut -c1-150; tail -4 "$LOGS/reproduce.txt"
step bench $(( $(left) - 15 )) python3 -m randstruct bench --device cuda --json "$LOGS/bench.json"
cat "$LOGS/bench.txt"
tar czf "$OUT/logs.tgz" -C $LOGS .
cd /tmp/paper || exit 0
tar czf "$OUT/figures.tgz" --exclude='*.zarr' --exclude='*.pt' .
# Run stores without the weight matrices (their chunks; metadata stays, so they open as fill values).
ex=(); for v in w w0 wi wi0 wo wo0 weights; do ex+=(--exclude="*/results.zarr/$v/c"); done
tar czf /tmp/stores.tgz "${ex[@]}" --exclude='*.pt' --exclude=figures $(ls -d */ | grep -v figures)
split -b 14M -d /tmp/stores.tgz "$OUT/stores.tgz."
ls -la "$OUT"
