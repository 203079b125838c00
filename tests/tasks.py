"""Tasks the test suite runs in real workers and eagerly."""

from __future__ import annotations

import logging
import sys
import time

from celery import shared_task

from tasklog.tasks import TerminalLoggingTask

logger = logging.getLogger(__name__)


@shared_task(bind=True, base=TerminalLoggingTask)
def print_numbered(self, label: str, count: int, delay: float = 0.0):
    """Print ``count`` numbered lines mixing stdout, stderr and logging, as a busy task would."""
    for number in range(1, count + 1):
        if number % 3 == 0:
            print(f"{label} {number} err", file=sys.stderr)
        elif number % 3 == 1:
            print(f"{label} {number} out")
        else:
            logger.warning("%s %s log", label, number)
        if delay:
            time.sleep(delay)
    return count
