"""Celery tasks and the task base class of celery-tasklog."""

from __future__ import annotations

from celery import Task, shared_task
from django.db import connections

from .capture import capture_task_run
from .conf import settings


class TerminalLoggingTask(Task):
    """Base class whose every run stores its stdout, stderr and logging in the database.

    The run is wrapped in ``capture_output``, so the traceback of a failing run is stored
    before Celery marks the task FAILURE.
    """

    def __call__(self, *args, **kwargs):
        request = self.request
        in_worker = not request.called_directly and not request.is_eager
        try:
            with capture_task_run(self):
                return super().__call__(*args, **kwargs)
        finally:
            if in_worker:
                drop_dead_connections()


def drop_dead_connections() -> None:
    """After a run in a worker, whose thread owns its connections: the result is stored next,
    on this thread's connection, so one the database dropped during the run (or one past
    ``CONN_MAX_AGE``) is closed first, as Django does after a request. Never a connection inside
    a transaction, and never outside a worker: a direct call or an eager run is the caller's
    code, whose connections and transactions are the caller's business.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


@shared_task(name="tasklog.prune_task_logs")
def prune_task_logs(batch_size: int = 10_000) -> dict:
    """Close runs whose worker died and tasks no worker took within CELERY_TASKLOG_QUEUE_TIMEOUT,
    archive finished logs (CELERY_TASKLOG_ARCHIVE), then delete logs older than
    CELERY_TASKLOG_RETENTION_DAYS (and their archives). With CELERY_TASKLOG_PARTITIONS, it
    also creates the coming partitions and drops the expired ones whole.

    Run daily by django-celery-beat (see ``tasklog.schedule``); ``tasklog_prune`` does the same
    through ``tasklog.pruning``.
    """
    from .archive import archive_due
    from .pruning import (
        close_dead_runs,
        close_never_started,
        create_partitions_ahead,
        delete_expired,
        drop_expired_partitions,
    )

    interrupted = close_dead_runs()
    never_started = close_never_started()
    archived = archive_due(batch_size=batch_size)
    created = create_partitions_ahead()
    dropped = drop_expired_partitions(settings.RETENTION_DAYS)
    logs, lines = delete_expired(settings.RETENTION_DAYS, batch_size)
    return {
        "interrupted": interrupted,
        "never_started": never_started,
        "archived_logs": archived.logs,
        "archived_lines": archived.lines,
        "archive_error": archived.error,
        "logs": logs + sum(done.logs for done in dropped),
        "lines": lines + sum(done.lines for done in dropped),
        "partitions_created": created,
        "partitions_dropped": [done.partition.name for done in dropped],
    }


@shared_task(bind=True, base=TerminalLoggingTask, name="tasklog.probe")
def tasklog_probe(self, token: str) -> str:
    """Print one known line, so that ``tasklog_diagnose --probe`` sees capture work end to end."""
    print(f"tasklog probe {token}")
    return token
