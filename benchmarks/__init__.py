"""Benchmarks of celery-tasklog: ``python -m benchmarks.<name> [--quick]``.

See docs/performance.md for the figures and how to reproduce them.
"""
