"""Benchmarks. Each runs its rivals side by side in one process and prints ratios."""
