"""The example task: something to watch while it runs."""

from __future__ import annotations

import logging
import sys
import time

from celery import shared_task

from tasklog.tasks import TerminalLoggingTask

logger = logging.getLogger(__name__)


@shared_task(bind=True, base=TerminalLoggingTask)
def timed_print_task(self, count: int = 10, interval: float = 1.0, fail: bool = False) -> str:
    """Print ``count`` numbered lines, one every ``interval`` seconds, reporting progress.

    With ``fail=True`` it raises ``RuntimeError`` after the last line, to watch a failure too.
    """
    logger.info("Printing %d lines, one every %s s", count, interval)
    for current in range(1, count + 1):
        print(f"Line {current} of {count}")
        self.update_state(state="PROGRESS", meta={"current": current, "total": count})
        if current < count:
            time.sleep(interval)
    if fail:
        print("Failing on purpose, as asked with fail=True", file=sys.stderr)
        raise RuntimeError(f"timed_print_task was told to fail after {count} lines")
    return f"Printed {count} lines."
