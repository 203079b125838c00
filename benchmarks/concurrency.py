"""Concurrency: 4 worker processes with 8 threads each (``-P threads -c 8``), 32 tasks each printing
numbered lines as fast as it can for 30 s: lines stored per second in total, the flush latency
(a line's timestamp to the moment its row is visible to another connection), and a count proving
no line was lost: every task's seqs are exactly 1..n for the n lines it printed; and, as the
ingest limit for as many writers, 4 processes each running one raw binary COPY at the same time.

    python -m benchmarks.concurrency [--quick]

Visibility is sampled: every 50 ms another connection reads each log's stored line count
(``TaskLog.lines``, committed with the rows), so a latency is late by at most that interval.
"""

from __future__ import annotations

import bisect
import sys
import threading
import time
from collections import defaultdict

from benchmarks import common

WORKERS = 4
THREADS = 8
SECONDS = {"full": 30.0, "quick": 1.0}
COPY_ROWS = {"full": 200_000, "quick": 5_000}  # per stream, for the parallel raw COPY
POLL = 0.05
SAMPLE_EVERY = 10  # seqs whose latency is computed: every tenth line of every task


class VisibilityPoller(threading.Thread):
    """Notes, every ``POLL`` seconds, how many lines of each task another connection sees."""

    def __init__(self, task_ids: list[str]):
        super().__init__(name="visibility-poller", daemon=True)
        self.task_ids = task_ids
        self.seen: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
        self.stopping = threading.Event()

    def run(self) -> None:
        with common.raw_connection() as connection:
            connection.autocommit = True
            while not self.stopping.wait(POLL):
                rows = connection.execute(
                    "SELECT task_id, lines FROM tasklog_tasklog WHERE task_id = ANY(%s)",
                    [self.task_ids],
                ).fetchall()
                now = time.time()
                for task_id, lines in rows:
                    times, counts = self.seen[task_id]
                    times.append(now)
                    counts.append(lines)

    def visible_at(self, task_id: str, seq: int) -> float | None:
        times, counts = self.seen[task_id]
        index = bisect.bisect_left(counts, seq)
        return times[index] if index < len(times) else None


def flush_latencies(poller: VisibilityPoller) -> list[float]:
    latencies = []
    with common.raw_connection() as connection:
        rows = connection.execute(
            "SELECT task_id, seq, extract(epoch FROM timestamp) FROM tasklog_tasklogline "
            "WHERE task_id = ANY(%s) AND seq %% %s = 0",
            [poller.task_ids, SAMPLE_EVERY],
        )
        for task_id, seq, printed in rows:
            visible = poller.visible_at(task_id, seq)
            if visible is not None:
                latencies.append(visible - float(printed))
    return latencies


def stored_counts(task_ids: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """``(rows, lowest seq, highest seq, dropped)`` of each task's log."""
    with common.raw_connection() as connection:
        rows = connection.execute(
            "SELECT l.task_id, count(*), min(l.seq), max(l.seq), max(t.dropped) "
            "FROM tasklog_tasklogline l JOIN tasklog_tasklog t ON t.task_id = l.task_id "
            "WHERE l.task_id = ANY(%s) GROUP BY l.task_id",
            [task_ids],
        ).fetchall()
    return {task_id: counts for task_id, *counts in rows}


def lost_lines(printed: dict[str, int]) -> int:
    """Lines printed but not stored as seqs 1..n; 0 means every line is there exactly once."""
    stored = stored_counts(list(printed))
    lost = 0
    for task_id, count in printed.items():
        rows, lowest, highest, dropped = stored.get(task_id, (0, 1, 0, 0))
        complete = (rows, lowest, highest, dropped) == (count, 1, count, 0)
        lost += 0 if complete else max(count - rows, 1)
    return lost


def measure(size: str) -> tuple[list[list], dict]:
    from benchmarks.tasks import print_for
    from tasklog.models import TaskLog

    seconds = SECONDS[size]
    with common.workers(WORKERS, pool="threads", concurrency=THREADS) as started:
        results = [
            print_for.apply_async((seconds,), queue=common.own_queue(worker))
            for worker in started
            for _ in range(THREADS)
        ]
        poller = VisibilityPoller([result.id for result in results])
        poller.start()
        printed = {result.id: result.get(timeout=seconds + 120) for result in results}
        time.sleep(2 * POLL)
        poller.stopping.set()
        poller.join()
    copies = common.parallel_copies(WORKERS, COPY_ROWS[size])
    logs = TaskLog.objects.filter(task_id__in=printed)
    first = min(log.started for log in logs)
    spread = (max(log.started for log in logs) - first).total_seconds()
    last = max(log.finished for log in logs)
    total = sum(printed.values())
    elapsed = (last - first).total_seconds()
    latency = common.percentiles(flush_latencies(poller))
    lost = lost_lines(printed)
    rows = [
        ["tasks (processes x threads)", f"{WORKERS} x {THREADS}"],
        ["lines printed and stored", total],
        ["first task start to last line stored, s", elapsed],
        ["first task start to last task start, s", spread],
        ["lines stored per second, total", total / elapsed],
        ["flush latency p50 / p95 / max, s", " / ".join(str(value) for value in latency.values())],
        ["lines lost", lost],
        [f"{WORKERS} parallel raw binary COPY streams, rows/s in total", copies],
        [
            f"capture / {WORKERS} parallel raw COPY streams (target >= 0.8)",
            total / elapsed / copies,
        ],
    ]
    figures = {
        "size": size,
        "workers": WORKERS,
        "threads": THREADS,
        "seconds": seconds,
        "lines": total,
        "lines_per_s": round(total / elapsed),
        "start_spread_s": round(spread, 3),
        "flush_latency_s": latency,
        "lost": lost,
        "parallel_copy_rows_per_s": round(copies),
        "capture_vs_parallel_copy": round(total / elapsed / copies, 3),
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    figures = common.run("concurrency", __doc__, measure, ["", "value"], argv)
    return 0 if figures["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
