"""Benchmarks against the sandbox emulators: `python -m bench.run` (see bench/run.py).

Scripts, not tests: they take minutes, depend on the machine, and report
figures (bench/RESULTS.md) rather than pass or fail.
"""
