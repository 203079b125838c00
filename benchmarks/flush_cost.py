"""What one flush costs: wall time of ``storage.store_batch`` for a batch of 10 lines (where the
round trips of a flush's transaction count most) and of 1,000 lines, one run storing batch
after batch as a task printing now and then does. PostgreSQL; fsync on under ``make bench``.

    python -m benchmarks.flush_cost [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections import deque

from benchmarks import common

BATCH_LINES = (10, 1_000)
FLUSHES = {"full": 400, "quick": 20}


def flush_seconds(lines_per_batch: int, flushes: int) -> list[float]:
    """Wall seconds of each of ``flushes`` flushes of ``lines_per_batch`` lines."""
    from tasklog.capture import storage
    from tasklog.capture.cap import Cap
    from tasklog.conf import settings

    alias = settings.DATABASE
    task_id = f"bench-{uuid.uuid4()}"
    run = storage.RunStart(task_id, uuid.uuid4().hex, {"task_name": "benchmark"}, lambda *_: "")
    position = storage.open_run(run, alias)
    no_cap, last_rel, seconds = Cap(0), 0, []
    for _ in range(flushes):
        now = time.time()
        lines = deque(
            (rel, now, "stdout", None, f"line {rel}", "", None)
            for rel in range(last_rel + 1, last_rel + lines_per_batch + 1)
        )
        last_rel += lines_per_batch
        batch = storage.Batch(lines=lines, lost=[], last_rel=last_rel, trimmed=0)
        start = time.perf_counter()
        position = storage.store_batch(task_id, no_cap, position, batch, alias)
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(size: str) -> tuple[list[list], dict]:
    rows, figures = [], {"size": size, "flushes": FLUSHES[size]}
    for lines in BATCH_LINES:
        seconds = flush_seconds(lines, FLUSHES[size])
        median_ms = statistics.median(seconds) * 1000
        p90_ms = statistics.quantiles(seconds, n=10)[-1] * 1000
        rows.append([f"flush of {lines:,} lines", median_ms, p90_ms])
        figures[f"flush_{lines}_lines_ms"] = {
            "median": round(median_ms, 3),
            "p90": round(p90_ms, 3),
        }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("flush_cost", __doc__, measure, ["", "median ms", "p90 ms"], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
