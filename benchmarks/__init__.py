"""Benchmark scripts: each prints a table and writes JSON (run as ``python -m benchmarks.<name>``)."""
