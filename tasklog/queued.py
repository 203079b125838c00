"""A captured task is known from the moment it is published: its ``TaskLog`` row, queued.

The ``before_task_publish`` hook inserts the row (``started`` empty) with one
``INSERT … ON CONFLICT DO NOTHING``, so a retry or a second publication of the same id changes
nothing. The worker's ``open_run`` makes the first real start of a queued row attempt 1.

The row is written by a helper thread on a connection of its own, never on the publisher's:

- outside the publisher's transaction, so a rollback keeps it (the message was sent anyway:
  Celery publishes at once) and a failing write cannot break that transaction;
- on PostgreSQL with ``synchronous_commit`` off for that connection alone, so ``delay()`` does
  not wait for the server's disk: a database crash in the next fraction of a second may lose the
  row, and then the worker creates it when the task starts, as without this hook.

A failing write never fails ``delay()``: it is logged, with the same fallback; ``delay()`` waits
for the row ``WRITE_TIMEOUT`` seconds at most. One helper thread serves the process (a forked
child gets its own): concurrent publishers take turns for one short INSERT each. In a test
case's transaction (pytest-django's ``db``), the row is written in it, so the test sees it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as WriteTimedOut

from django.db import DatabaseError, connections, transaction
from django.db.models.constants import OnConflict
from django.utils import timezone

from .capture.storage import is_unreachable
from .conf import settings
from .models import TaskLog
from .origin import ORIGIN_HEADER, origin_fields, origin_for_publish

logger = logging.getLogger(__name__)

_TASK_ID_LENGTH = TaskLog._meta.get_field("task_id").max_length
INSERTED_FIELDS = [field for field in TaskLog._meta.concrete_fields if not field.primary_key]
WRITE_TIMEOUT = 5.0  # seconds delay() waits at most for the row; then it goes on without it
_own_connection = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklog-queued")


def _new_helper_in_forked_child() -> None:
    """A forked child (prefork pool, gunicorn) has no copy of the parent's helper thread: an
    executor it inherited would never run the INSERT. It gets one of its own."""
    global _own_connection
    _own_connection = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklog-queued")


os.register_at_fork(after_in_child=_new_helper_in_forked_child)


def is_captured(task_name: str | None) -> bool:
    """Whether capture applies to the task the publisher names: every task with
    ``CELERY_TASKLOG_ALL_TASKS``, else those of class ``TerminalLoggingTask``."""
    from celery import current_app

    from .tasks import TerminalLoggingTask

    if settings.ALL_TASKS:
        return True
    task = current_app.tasks.get(task_name) if isinstance(task_name, str) else None
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
    return TaskLog(**TaskLog.objects.fitted(fields))


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
        _open_helper_connection(alias)
        insert_queued(row, alias)
    except DatabaseError as error:
        if not is_unreachable(error):
            raise
        connections[alias].close()
        _open_helper_connection(alias)
        insert_queued(row, alias)


def _open_helper_connection(alias: str) -> None:
    """Connect if needed; a new PostgreSQL connection commits without waiting for the disk."""
    connection = connections[alias]
    if connection.connection is None:
        connection.ensure_connection()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")


def in_test_case_transaction(alias: str) -> bool:
    """Inside only the atomic blocks a Django test case wraps each test in."""
    connection = connections[alias]
    blocks = connection.atomic_blocks if connection.in_atomic_block else []
    return bool(blocks) and all(block._from_testcase for block in blocks)


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
    from .capture import active_capture

    capture = active_capture()
    if capture is not None and capture.task_id == task_id:
        return  # a retry published by the running attempt: its row exists
    alias = settings.DATABASE
    row = queued_row(headers, routing_key, exchange)
    try:
        if in_test_case_transaction(alias):
            with transaction.atomic(using=alias):
                insert_queued(row, alias)
        else:
            _own_connection.submit(_insert_on_own_connection, row, alias).result(WRITE_TIMEOUT)
    except (DatabaseError, WriteTimedOut) as error:
        logger.warning("tasklog: task %s not recorded as queued: %s", task_id, error)
