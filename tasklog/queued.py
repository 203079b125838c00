"""A captured task is known from the moment it is published: its ``TaskLog`` row, queued.

The ``before_task_publish`` hook inserts the row (``started`` empty) with one
``INSERT … ON CONFLICT DO NOTHING``, so a retry or a second publication of the same id changes
nothing. The worker's ``open_run`` makes the first real start of a queued row attempt 1.

The row is written outside the publisher's transaction: published inside ``atomic()`` (or under
``ATOMIC_REQUESTS``) on the log database, it is written by a helper thread on its own connection,
so a rollback keeps it (the message was sent anyway: Celery publishes at once) and a failing
write cannot break the caller's transaction. A failing write never fails ``delay()``: it is
logged, and the worker creates the row when the task starts, as without this hook.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import DatabaseError, connections, transaction
from django.db.models.constants import OnConflict
from django.utils import timezone

from .capture.storage import fitted
from .conf import settings
from .models import TaskLog
from .origin import ORIGIN_HEADER, origin_fields, origin_for_publish

logger = logging.getLogger(__name__)

_TASK_ID_LENGTH = TaskLog._meta.get_field("task_id").max_length
INSERTED_FIELDS = [field for field in TaskLog._meta.concrete_fields if not field.primary_key]
_own_connection = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklog-queued")


def is_captured(task_name: str | None) -> bool:
    """Whether capture applies to the task the publisher names: every task with
    ``CELERY_TASKLOG_ALL_TASKS``, else those of class ``TerminalLoggingTask``."""
    from celery import current_app

    from .tasks import TerminalLoggingTask

    if settings.ALL_TASKS:
        return True
    task = current_app.tasks.get(task_name) if task_name else None
    return isinstance(task, TerminalLoggingTask)


def queued_row(headers: dict, routing_key: str | None, exchange: str | None) -> TaskLog:
    """The row of a task just published: queued now, on the queue the message was sent to."""
    now = timezone.now()
    fields = {
        "task_id": headers["id"],
        "task_name": str(headers.get("task") or ""),
        "queued": now,
        "last_seen": now,
        "flush_token": "",
        "queue": str(routing_key or exchange or ""),
        **origin_fields(headers.get(ORIGIN_HEADER) or origin_for_publish()),
    }
    return TaskLog(**fitted(fields))


def insert_queued(row: TaskLog, alias: str) -> None:
    """One INSERT that leaves an existing row (a retry, a started run) alone.

    ``bulk_create(ignore_conflicts=True)`` would say the same in three round trips (it wraps the
    statement in a transaction); ``_insert``, the statement it runs, is one, in autocommit.
    """
    TaskLog.objects.using(alias)._insert(
        [row], fields=INSERTED_FIELDS, using=alias, on_conflict=OnConflict.IGNORE
    )


def _insert_on_own_connection(row: TaskLog, alias: str) -> None:
    """On the helper thread, whose connection stays open between publications; a broken one
    (the server closed it while idle) is replaced once."""
    try:
        insert_queued(row, alias)
    except DatabaseError:
        connections[alias].close()
        insert_queued(row, alias)


def release_connection() -> None:
    """Close the helper thread's connections (a test database cannot be dropped while open)."""
    _own_connection.submit(connections.close_all).result()


def record_queued(sender=None, headers=None, routing_key=None, exchange=None, **kwargs) -> None:
    """``before_task_publish`` receiver: record a captured task as queued (see module doc)."""
    task_id = (headers or {}).get("id")
    if not task_id or not isinstance(task_id, str) or len(task_id) > _TASK_ID_LENGTH:
        return
    if not (settings.ENABLED and settings.RECORD_QUEUED and is_captured(headers.get("task"))):
        return
    from .capture import active_capture, in_callers_transaction

    capture = active_capture()
    if capture is not None and capture.task_id == task_id:
        return  # a retry published by the running attempt: its row exists
    alias = settings.DATABASE
    row = queued_row(headers, routing_key, exchange)
    try:
        if in_callers_transaction(alias):
            _own_connection.submit(_insert_on_own_connection, row, alias).result()
        elif connections[alias].in_atomic_block:  # a test case's transaction: a savepoint
            with transaction.atomic(using=alias):
                insert_queued(row, alias)
        else:
            insert_queued(row, alias)
    except DatabaseError as error:
        logger.warning("tasklog: task %s not recorded as queued: %s", task_id, error)
