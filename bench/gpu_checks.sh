#!/usr/bin/env bash
# The GPU checks and benchmarks in one short run (what a lent H100/H200 session executes):
# GPU tests, the per-kernel step profile, and kd.distill vs Trainer. Results go to $OUT (or ./gpu_out).
# If the machine's transformers is older than setup.py allows, put a wheel in .whl/ first.
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  pip install --no-deps --quiet --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi -L | tee "$OUT/card.txt"
python -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/card.txt"
timeout 180 python -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
tail -3 "$OUT/gpu_tests.log"
timeout 200 python -m bench.profile_step --json "$OUT/profile_step.json" > "$OUT/profile_step.log" 2>&1
grep -E "^(sdpa|[0-9]+ )" "$OUT/profile_step.log" | cut -c1-400
timeout 300 python -m bench.distill_vs_trainer --device cuda --rows 200000 --steps 600 --batch-size 256 \
  --only "${DISTILL_VARIANTS:-graphs,eager,trainer}" --json "$OUT/distill_vs_trainer.json" > "$OUT/distill.log" 2>&1
grep -E "^(graphs|eager|trainer)" "$OUT/distill.log" | cut -c1-300
grep -A8 speedup "$OUT/distill_vs_trainer.json"
