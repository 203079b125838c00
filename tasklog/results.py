"""The task state, read from django-celery-results' ``TaskResult`` by task id.

Two queries instead of a SQL join, so that the log tables may live in another database.
"""

from __future__ import annotations

from collections.abc import Iterable

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
