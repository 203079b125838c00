"""Celery tasks and the task base class of celery-tasklog."""

from __future__ import annotations

from celery import Task

from .capture import capture_task_run


class TerminalLoggingTask(Task):
    """Base class whose every run stores its stdout, stderr and logging in the database.

    The run is wrapped in ``capture_output``, so the traceback of a failing run is stored
    before Celery marks the task FAILURE.
    """

    def __call__(self, *args, **kwargs):
        with capture_task_run(self):
            return super().__call__(*args, **kwargs)
