"""Task state from django-celery-results' ``TaskResult`` by task id, and when a log is complete.

Two queries instead of a SQL join, so that the log tables may live in another database.
Every reader (page, SSE, JSON, commands, admin) asks this module, so they all tell the same
story: a run silent for ``CELERY_TASKLOG_STALE_AFTER`` is INTERRUPTED at read time, before any
sweep closes it, and a log is complete by one rule (``is_complete``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from numbers import Real

from celery import states
from django.apps import apps
from django.utils import timezone

from .conf import settings

INTERRUPTED = "INTERRUPTED"
QUEUED = "QUEUED"  # published, recorded by the publish hook, not taken by a worker yet
FINISHED = "FINISHED"
CLOSE_GRACE = timedelta(seconds=10)


def results_by_task_id(task_ids: Iterable[str]) -> dict:
    """``{task_id: TaskResult}`` for those ids that have a result row."""
    if not apps.is_installed("django_celery_results"):
        return {}
    from django_celery_results.models import TaskResult

    ids = list(task_ids)
    if not ids:
        return {}
    return {result.task_id: result for result in TaskResult.objects.filter(task_id__in=ids)}


def result_for(task_id: str):
    return results_by_task_id([task_id]).get(task_id)


def is_silent(log, now: datetime | None = None) -> bool:
    """A running log whose worker has written nothing for ``STALE_AFTER`` seconds: it died."""
    stale_before = (now or timezone.now()) - timedelta(seconds=settings.STALE_AFTER)
    return log.is_running and log.last_seen < stale_before


def is_interrupted(log, now: datetime | None = None) -> bool:
    """The run was cut short: closed as interrupted, or silent too long to be alive."""
    return log is not None and (log.interrupted or is_silent(log, now))


def effective_state(log, result, now: datetime | None = None) -> str:
    """What a reader should be told about the task.

    A final state from the result backend wins; a worker that died leaves the result at STARTED,
    so an interrupted run (flagged, or silent for ``STALE_AFTER``) comes next; a task waiting in
    its queue is QUEUED; a task that stores no result shows FINISHED.
    """
    if result is not None and result.status in states.READY_STATES:
        return result.status
    if is_interrupted(log, now):
        return INTERRUPTED
    if result is not None:
        return result.status
    if log is None:
        return states.PENDING
    if log.is_queued:
        return QUEUED
    return FINISHED if log.finished else states.STARTED


def is_final(state: str) -> bool:
    return state in states.READY_STATES or state in {INTERRUPTED, FINISHED}


def is_complete(log, result, now: datetime | None = None) -> bool:
    """Every line of the log is stored: nothing more will come, so a reader may stop.

    The state must be final, and the log closed too: Celery may store the final state before
    the worker's last lines (``CELERY_TASKLOG_ALL_TASKS``, or a database hiccup as the task
    ends). A log still open counts as closed once it is silent for ``STALE_AFTER`` (its worker
    died) or, with a final result, once neither the result nor the log changed for
    ``CLOSE_GRACE`` (the worker is gone without closing it).
    """
    now = now or timezone.now()
    if not is_final(effective_state(log, result, now)):
        return False
    if log is None or not log.is_running or is_silent(log, now):
        return True
    last_change = max(log.last_seen, getattr(result, "date_done", None) or log.last_seen)
    return result is not None and now - last_change >= CLOSE_GRACE


def progress_of(result) -> float | None:
    """How far the task got, in percent (0-100), or None when it does not say.

    While a task reports progress (``self.update_state(state="PROGRESS", meta=...)``)
    django-celery-results keeps the meta as the JSON ``result``: ``{"current": 3, "total": 8}``
    or ``{"progress": 37.5}`` (a percentage). A successful task is at 100.
    """
    if result is None:
        return None
    if result.status == states.SUCCESS:
        return 100.0
    if result.status in states.READY_STATES or result.content_type != "application/json":
        return None
    try:
        meta = json.loads(result.result or "null")
    except ValueError:
        return None
    return _percent(meta) if isinstance(meta, dict) else None


def _percent(meta: dict) -> float | None:
    current, total, progress = meta.get("current"), meta.get("total"), meta.get("progress")
    if _is_number(current) and _is_number(total) and total > 0:
        progress = 100 * current / total
    if not _is_number(progress):
        return None
    return round(min(max(float(progress), 0.0), 100.0), 1)


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)
