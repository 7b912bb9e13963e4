"""Benchmarks and synthetic scenes for bench.py and the tests: beside the package, not installed with it."""
