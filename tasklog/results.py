"""The task state, read from django-celery-results' ``TaskResult`` by task id.

Two queries instead of a SQL join, so that the log tables may live in another database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from numbers import Real

from celery import states
from django.apps import apps

INTERRUPTED = "INTERRUPTED"
FINISHED = "FINISHED"


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


def effective_state(log, result) -> str:
    """What a reader should be told about the task.

    A final state from the result backend wins; a worker that died leaves the result at STARTED,
    so the log's interrupted flag comes next; a task that stores no result shows FINISHED.
    """
    if result is not None and result.status in states.READY_STATES:
        return result.status
    if log is not None and log.interrupted:
        return INTERRUPTED
    if result is not None:
        return result.status
    if log is None:
        return states.PENDING
    return FINISHED if log.finished else states.STARTED


def is_final(state: str) -> bool:
    return state in states.READY_STATES or state in {INTERRUPTED, FINISHED}


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
