"""The task's own cost of a ``print()``: CPU time of the printing thread per line, captured
(default settings, the flusher storing in the background) against the same prints to a local
file. Thread CPU time (``time.thread_time``) counts the task's thread only: what the flusher
spends, and waits for the GIL, are not the task's work.

    python -m benchmarks.print_cost [--quick]
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
import uuid

from benchmarks import common
from benchmarks.workloads import print_lines

LINES = {"full": 200_000, "quick": 5_000}
REPEAT = {"full": 5, "quick": 1}
TARGET_US = 1.0  # above printing to a local file


def thread_seconds(function) -> float:
    """CPU seconds this thread spent in ``function()``."""
    start = time.thread_time()
    function()
    return time.thread_time() - start


def to_file(path: str, count: int) -> float:
    with open(path, "w") as target, contextlib.redirect_stdout(target):
        return thread_seconds(lambda: print_lines(count))


def captured(count: int) -> float:
    """The printing thread's CPU seconds inside ``capture_output``; leaving it (the wait for
    the last flush) is not counted."""
    from tasklog.capture import capture_output

    with capture_output(f"bench-{uuid.uuid4()}", task_name="benchmark"):
        return thread_seconds(lambda: print_lines(count))


def measure(size: str) -> tuple[list[list], dict]:
    lines, repeat = LINES[size], REPEAT[size]
    with tempfile.NamedTemporaryFile(suffix=".log") as local_file:
        file_us = (
            1e6 / lines * statistics.median(to_file(local_file.name, lines) for _ in range(repeat))
        )
    capture_us = 1e6 / lines * statistics.median(captured(lines) for _ in range(repeat))
    above = capture_us - file_us
    rows = [
        ["print() to a local file", file_us],
        ["print() captured (task thread)", capture_us],
        [f"captured above the file (target <= {TARGET_US:g})", above],
    ]
    figures = {
        "size": size,
        "lines": lines,
        "file_us_per_print": round(file_us, 3),
        "captured_us_per_print": round(capture_us, 3),
        "captured_above_file_us": round(above, 3),
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("print_cost", __doc__, measure, ["", "µs per print (thread CPU)"], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
