"""Pruning: close the runs whose worker died, then delete expired logs (dropping whole
partitions of a partitioned lines table first, see ``tasklog.partitions``).

One place for both steps, so that the daily beat task ``prune_task_logs`` and
``manage.py tasklog_prune`` do the same thing.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from . import partitions
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


def partitioned(using: str | None = None) -> bool:
    """Whether partitions are on and the lines table of ``using`` was converted."""
    alias = using or settings.DATABASE
    return partitions.uses_partitions(alias) and partitions.is_partitioned(alias)


def create_partitions_ahead(using: str | None = None) -> list[str]:
    """Create the partitions of this period and the next ones; returns their names."""
    if not partitioned(using):
        return []
    return partitions.ensure_ahead(using or settings.DATABASE, settings.PARTITIONS)


def drop_expired_partitions(
    days: int, using: str | None = None, *, dry_run: bool = False
) -> list[partitions.Dropped]:
    """Drop the partitions in which every log is older than ``days`` days, with their logs;
    the logs of a partition kept back by a live one are left to ``delete_expired``."""
    if not days or not partitioned(using):
        return []
    alias = using or settings.DATABASE
    cutoff = timezone.now() - timedelta(days=days)
    found = partitions.droppable(alias, cutoff)
    if dry_run:
        return [
            partitions.Dropped(part, *partitions.count_partition(alias, part)) for part in found
        ]
    dropped = (partitions.drop_partition(alias, part, cutoff) for part in found)
    return [done for done in dropped if done is not None]
