#!/usr/bin/env bash
# Every benchmark once on a CUDA GPU (at most 8 minutes: the step limits add up to 480 s), from the repository root:
#   bash benchmarks/run_gpu.sh [results folder, default benchmarks/results]
# Each step has its own time limit and writes its JSON as it goes, so a slow step loses only itself.
set -uo pipefail
O=${1:-${OUT:-benchmarks/results}}
mkdir -p "$O"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch, torch_geometric; print(torch.__version__, torch_geometric.__version__, torch.cuda.get_device_name())"
# The CUDA-only tests (dense attention path, no host sync, AMP): skipped on CPU machines, run here.
timeout 80 python -m pytest -q -p no:cacheprovider tests/test_cuda.py
# Compile time and compiled/eager speed (one step compiled once, reused for the T steps), each in a fresh process:
# the seed default and N=1000, B=256 with kNN and ring; fp32 in the default mode, then bf16 with CUDA graphs (reduce-overhead).
timeout 120 python -m benchmarks.compile --device cuda --steps 10 --configs 10:256:knn:5 1000:256:knn:5 \
    1000:256:ring:5 --out "$O/compile_cuda.json"
timeout 100 python -m benchmarks.compile --device cuda --steps 10 --compile-mode reduce-overhead --amp bf16 \
    --configs 10:256:knn:5 1000:256:knn:5 --out "$O/compile_cuda_reduce_overhead.json"
# Whole training step, lib vs dense, B*N = 65536 plus (10, 256) and (1000, 256): eager, bf16, fp16.
timeout 100 python -m benchmarks.throughput --device cuda --modes eager bf16 fp16 --out "$O/throughput_cuda.json"
timeout 40 python -m benchmarks.layer --device cuda --out "$O/layer_cuda.json"
timeout 40 python -m benchmarks.knn --device cuda --out "$O/knn_cuda.json"
} 2>&1 | tee "$O/gpu_log.txt"
