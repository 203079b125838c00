"""Celery tasks and the task base class of celery-tasklog."""

from __future__ import annotations

from celery import Task
from django.db import close_old_connections

from .capture import capture_task_run


class TerminalLoggingTask(Task):
    """Base class whose every run stores its stdout, stderr and logging in the database.

    The run is wrapped in ``capture_output``, so the traceback of a failing run is stored
    before Celery marks the task FAILURE.
    """

    def __call__(self, *args, **kwargs):
        try:
            with capture_task_run(self):
                return super().__call__(*args, **kwargs)
        finally:
            if not self.request.is_eager:
                # The result is stored next, on this thread's connection: if the database went
                # away during the run, let Django drop the dead connection (as after a request).
                close_old_connections()
