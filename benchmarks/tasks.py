"""Tasks the benchmarks run in real workers; each prints as a real task would, only more."""

from __future__ import annotations

import os
import time

from celery import shared_task

from benchmarks.workloads import print_lines
from tasklog.tasks import TerminalLoggingTask


@shared_task(base=TerminalLoggingTask)
def print_fast(count: int) -> int:
    print_lines(count)
    return count


@shared_task(base=TerminalLoggingTask)
def print_clocked(count: int, interval: float, warmup: float) -> int:
    """After ``warmup`` seconds, one line every ``interval`` with the time it was printed."""
    time.sleep(warmup)
    return print_with_clock(count, interval)


def print_with_clock(count: int, interval: float) -> int:
    for number in range(1, count + 1):
        print(f"line {number} printed at {time.time():.6f}")
        time.sleep(interval)
    return count


@shared_task(base=TerminalLoggingTask)
def print_clocked_after(gate: str, count: int, interval: float) -> int:
    """``print_clocked`` once the file ``gate`` exists: the benchmark opens it when its
    readers are all connected."""
    while not os.path.exists(gate):
        time.sleep(0.02)
    return print_with_clock(count, interval)


@shared_task(base=TerminalLoggingTask)
def print_for(seconds: float) -> int:
    """Print numbered lines for ``seconds``; returns how many."""
    deadline = time.monotonic() + seconds
    number = 0
    while time.monotonic() < deadline:
        for _ in range(100):
            number += 1
            print(f"line {number} of a busy task")
    return number
