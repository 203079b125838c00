"""What recording a task as queued costs the publisher: ``delay()`` latency with and without.

    python -m benchmarks.publish [--quick]

``delay()`` of a ``TerminalLoggingTask`` to Redis, no worker consuming, PostgreSQL as the log
database on the same machine. Three ways, in interleaved rounds so that a busy machine slows all
alike: ``CELERY_TASKLOG_RECORD_QUEUED=False`` (Celery alone), ``True``, and ``True`` inside the
caller's ``transaction.atomic()`` (either way the INSERT runs on a helper thread's own connection,
see ``tasklog.queued``). The queue is purged at the end.
"""

from __future__ import annotations

import statistics
import sys
import time

from benchmarks import common

CALLS = {"full": 3000, "quick": 150}
ROUND = 50
WARMUP_CALLS = 50


def timed_delays(task, calls: int, record: bool, in_transaction: bool) -> list[float]:
    from django.conf import settings
    from django.db import transaction

    settings.CELERY_TASKLOG_RECORD_QUEUED = record
    seconds = []
    for _ in range(calls):
        if in_transaction:
            with transaction.atomic():
                start = time.perf_counter()
                task.delay(1)
                seconds.append(time.perf_counter() - start)
        else:
            start = time.perf_counter()
            task.delay(1)
            seconds.append(time.perf_counter() - start)
    return seconds


def milliseconds(values: list[float]) -> dict[str, float]:
    """p50, p95 and max in milliseconds, to the microsecond."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 3),
        "p95_ms": round(1000 * p95, 3),
        "max_ms": round(1000 * ordered[-1], 3),
    }


def measure(size: str) -> tuple[list, dict]:
    from benchmarks.celery_app import app
    from benchmarks.tasks import print_fast
    from tasklog.models import TaskLog

    app.set_current()
    ways = {"off": (False, False), "on": (True, False), "on, in atomic()": (True, True)}
    samples: dict[str, list[float]] = {way: [] for way in ways}
    for record, in_transaction in ways.values():
        timed_delays(print_fast, WARMUP_CALLS, record, in_transaction)
    for _ in range(CALLS[size] // ROUND):
        for way, (record, in_transaction) in ways.items():
            samples[way] += timed_delays(print_fast, ROUND, record, in_transaction)
    recorded = TaskLog.objects.count()
    app.control.purge()
    rows, figures = [], {"size": size, "calls": CALLS[size], "recorded": recorded}
    for way, seconds in samples.items():
        stats = milliseconds(seconds)
        rows.append([way, len(seconds), stats["p50_ms"], stats["p95_ms"], stats["max_ms"]])
        figures[way] = stats
    figures["added_p95_ms"] = round(figures["on"]["p95_ms"] - figures["off"]["p95_ms"], 3)
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    headers = ["RECORD_QUEUED", "calls", "p50 ms", "p95 ms", "max ms"]
    common.run("publish", __doc__, measure, headers, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
