#!/usr/bin/env bash
# Every benchmark on the GPU, in one go: results/benchmarks/<name>_cuda.json beside the CPU figures.
# Run from anywhere on a CUDA machine after scripts/setup.sh; about 20 minutes on one H100-class GPU.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-../.venv/bin/python}
out=../results/benchmarks
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "benchmarks/gpu.sh: torch sees no CUDA device here; run it on a GPU machine (the CPU figures come from the commands in docs/benchmarks.md)" >&2
  exit 2
fi
gpu=$("$python" -c 'import torch; print(torch.cuda.get_device_name(0))')
echo "GPU: $gpu"
"$python" loop_overhead.py --device cuda --out "$out/loop_overhead_cuda.json"
"$python" loop_overhead.py --device cuda --amp --out "$out/loop_overhead_cuda_amp.json"
"$python" eval_paths.py --samples 10000 --out "$out/eval_paths_cuda.json"
"$python" student_speed.py --device cuda --configs default cifar10 lsun_bedroom --out "$out/student_speed_cuda.json"
"$python" train_options.py --device cuda --out "$out/train_options_cuda.json"
"$python" paper_job.py --device cuda --steps 500 --out "$out/paper_job_cuda.json"
"$python" dag_budget.py --cores "$(nproc)" --out "$out/dag_budget_cuda.json"
