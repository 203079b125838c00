"""What the benchmarked tasks print, kept free of Django so any process can import it."""

from __future__ import annotations

from collections.abc import Iterator


def printed_lines(count: int) -> Iterator[str]:
    """The short lines of ``print_lines``, for writers that store them without printing."""
    for number in range(1, count + 1):
        yield f"line {number} of a fast task"


def print_lines(count: int) -> None:
    """The body every throughput figure times: ``count`` short lines, as fast as possible."""
    for number in range(1, count + 1):
        print(f"line {number} of a fast task")
