"""Benchmarks for gocachemgr (run as modules, e.g. ``python -m benchmarks.bench_cacheprog``)."""
