#!/usr/bin/env bash
# Every benchmark once on a CUDA GPU (about 8 minutes on an H100), from the repository root:
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
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_cuda.py
# The seed default (N=10, B=256): eager, then compiled.
timeout 60 python -m gnncomm bench --agents 10 --batch-size 256 --device cuda --steps 10 --warmup 3 --json \
    > "$O/bench_n10_eager_cuda.json"
timeout 150 python -m gnncomm bench --agents 10 --batch-size 256 --device cuda --compile --steps 10 --warmup 3 --json \
    > "$O/bench_n10_compile_cuda.json"
# Whole training step, lib vs dense, B*N = 65536 plus (10, 256) and (1000, 256): eager, bf16, fp16.
timeout 180 python -m benchmarks.throughput --device cuda --modes eager bf16 fp16 --out "$O/throughput_cuda.json"
timeout 50 python -m benchmarks.layer --device cuda --out "$O/layer_cuda.json"
timeout 60 python -m benchmarks.knn --device cuda --out "$O/knn_cuda.json"
# The GPU goal: N=1000, B=256, compiled, bf16.
timeout 130 python -m gnncomm bench --agents 1000 --batch-size 256 --device cuda --compile --amp bf16 --steps 10 \
    --warmup 3 --json > "$O/bench_cli_cuda.json"
cat "$O/bench_cli_cuda.json"
# torch.compile, lib vs dense, at N=1000 (B=66).
timeout 150 python -m benchmarks.throughput --device cuda --agents 1000 --extra --topologies knn \
    --modes compile_bf16 --no-plot --out "$O/throughput_cuda_compile.json"
} 2>&1 | tee "$O/gpu_log.txt"
