#!/usr/bin/env bash
# The GPU checks of issue 3 in one script, for a lent GPU machine whose image already has
# jax[cuda], numba, optax, torch, pandas, pyarrow, scipy, sympy, matplotlib and rich:
#   1. section G of the benchmark (Muon vs optax and torch, bandwidth, engine steps/s);
#   2. the CPU/GPU equivalence test (pytest -m gpu);
#   3. the D = 1.7e7 escape sweep (benchmarks/gpu_sweep.toml) and its summary.
# Results go to $OUT (default ./gpu-out). Each part has its own time limit, so one that
# fails or runs long does not cost the others.
set -u
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}"
PY="${PY:-python3}"
t0=$SECONDS
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import jax, jaxlib, numba, numpy, optax; print('jax', jax.__version__, jax.devices(), 'numba', numba.__version__, 'numpy', numpy.__version__, 'optax', optax.__version__)"
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || true
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== 1. benchmark section G"
timeout "${BENCH_S:-200}" $PY -m benchmarks --sections G --json "$OUT/gpu_bench.json" 2>&1 \
  | tee "$OUT/bench.log"
echo "bench done at $((SECONDS - t0)) s"

echo "== 2. CPU/GPU equivalence test"
timeout "${TEST_S:-90}" $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_simulate.py 2>&1 \
  | tail -5 | tee "$OUT/pytest_gpu.log"
echo "test done at $((SECONDS - t0)) s"

echo "== 3. D = 1.7e7 sweep"
sweep=/tmp/gpu_sweep
s0=$SECONDS
timeout "${SWEEP_S:-240}" $PY -m saddle sweep benchmarks/gpu_sweep.toml --out "$sweep" --quiet 2>&1 \
  | tail -5 | tee "$OUT/sweep.log"
echo "sweep wall s: $((SECONDS - s0)) (rc ${PIPESTATUS[0]})" | tee -a "$OUT/sweep.log"
$PY -m saddle results "$sweep" --json > "$OUT/sweep_results.json" 2>>"$OUT/sweep.log"
$PY -m saddle results "$sweep" 2>&1 | tee -a "$OUT/sweep.log"
tar czf "$OUT/gpu_sweep.tar.gz" -C /tmp gpu_sweep
echo "all done at $((SECONDS - t0)) s"
