"""Log rows made directly with the ORM, for tests that need no worker."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from tasklog.models import Stream, TaskLog, TaskLogLine

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_log(task_id: str = "task-1", *, rows=(), started=STARTED, **fields) -> TaskLog:
    """A TaskLog and its lines; ``rows`` are ``message`` or
    ``(stream, message[, level[, logger[, extra]]])``.

    Line n is stamped n/2 seconds after ``STARTED``; the log finished half a second after it
    started and half a second a line.
    """
    rows = [(Stream.STDOUT, row) if isinstance(row, str) else row for row in rows]
    last = started + timedelta(seconds=len(rows) / 2 or 0.5)
    values = {"task_name": "tests.tasks.print_numbered", "worker": "celery@test"}
    values |= {"started": started, "finished": last, "last_seen": last, "lines": len(rows)}
    log = TaskLog.objects.create(task_id=task_id, **(values | fields))
    add_lines(task_id, rows)
    return log


def add_lines(task_id: str, rows, first_seq: int = 1) -> None:
    TaskLogLine.objects.bulk_create(
        TaskLogLine(
            task_id=task_id,
            seq=seq,
            timestamp=STARTED + timedelta(seconds=seq / 2),
            stream=row[0],
            message=row[1],
            level=row[2] if len(row) > 2 else None,
            logger=row[3] if len(row) > 3 else "",
            extra=row[4] if len(row) > 4 else None,
        )
        for seq, row in enumerate(rows, start=first_seq)
    )


def many_lines(task_id: str, count: int, batch_size: int = 10_000) -> None:
    """``count`` stdout lines ``line <seq>``, inserted in batches."""
    for start in range(1, count + 1, batch_size):
        stop = min(start + batch_size, count + 1)
        add_lines(task_id, [(Stream.STDOUT, f"line {seq}") for seq in range(start, stop)], start)


WARNING = logging.WARNING
