"""Pruning: close the runs whose worker died, then delete expired logs.

One place for both steps, so that the daily beat task ``prune_task_logs`` and
``manage.py tasklog_prune`` do the same thing.
"""

from __future__ import annotations

from .conf import settings
from .models import TaskLog


def close_dead_runs(using: str | None = None, *, dry_run: bool = False) -> int:
    """Mark interrupted the runs silent for ``CELERY_TASKLOG_STALE_AFTER``; returns how many.

    A run is open until its worker closes it; a worker killed by SIGKILL or a lost machine never
    does, so silence is the only sign left. ``dry_run`` counts them and changes nothing.
    """
    stale = TaskLog.objects.using(using or settings.DATABASE).stale(settings.STALE_AFTER)
    return stale.count() if dry_run else stale.mark_interrupted()


def close_never_started(using: str | None = None, *, dry_run: bool = False) -> int:
    """Close the tasks queued for more than ``CELERY_TASKLOG_QUEUE_TIMEOUT`` that no worker took
    (a lost or purged queue, no worker for it); returns how many. 0 switches this off."""
    if not settings.QUEUE_TIMEOUT:
        return 0
    waiting = TaskLog.objects.using(using or settings.DATABASE).never_started(
        settings.QUEUE_TIMEOUT
    )
    return waiting.count() if dry_run else waiting.mark_never_started()


def delete_expired(days: int, batch_size: int, using: str | None = None) -> tuple[int, int]:
    """Delete the logs in which nothing was written for ``days`` days: ``(logs, lines)``."""
    if not days:
        return 0, 0
    logs = TaskLog.objects.using(using or settings.DATABASE).expired(days)
    return logs.delete_with_lines(batch_size)
