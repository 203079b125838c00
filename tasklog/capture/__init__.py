"""Capture of task output: what a task prints or logs is stored as numbered lines of its log.

Public API: ``capture_output`` (any block of code), ``capture_task_run`` (a Celery task run,
used by ``TerminalLoggingTask`` and by ``CELERY_TASKLOG_ALL_TASKS``), ``in_task_context`` (for
threads a task starts), ``DBLogWriter`` (the text stream behind it all).
"""

from __future__ import annotations

import contextvars
import functools
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from celery.exceptions import Ignore, Reject, Retry
from django.db import connections

from ..conf import settings
from ..models import Stream, TaskLog
from ..origin import ORIGIN_HEADER, origin_fields, origin_for_publish
from ..pools import tasks_share_a_process
from ..signals import signal_name
from .buffer import TaskCapture
from .context import active_capture, bypass, current_capture, logger
from .flusher import get_flusher
from .lines import DBLogWriter
from .streams import (
    DescriptorCapture,
    install_logging_handler,
    install_stream_proxies,
    write_to_worker_output,
)

__all__ = [
    "DBLogWriter",
    "TaskCapture",
    "active_capture",
    "capture_output",
    "capture_task_run",
    "in_task_context",
]

FINAL_FLUSH_ATTEMPTS = 2

# Set by the worker_init signal: descriptor capture needs a pool with one task per process.
worker_pool = {"name": None}


@contextmanager
def capture_output(
    task_id: str,
    *,
    task_name: str = "",
    worker: str = "",
    origin: dict | None = None,
    attempt_reason: str = "",
    synchronous: bool = False,
) -> Iterator[TaskCapture | None]:
    """Store everything the block writes to stdout, stderr and logging as the log of ``task_id``.

    Only this context is captured: other threads and tasks keep their own output. An exception
    leaving the block is stored on stderr (its traceback) before it propagates, and the last
    lines are stored before the block ends. ``synchronous`` writes from the calling thread
    (eager runs) instead of the background flusher, unless that thread is inside a transaction
    of its own on the log database: the log is never part of the caller's transaction (see
    ``in_callers_transaction``). Yields None when capture is disabled or the id does not fit
    the ``task_id`` column.
    """
    if not settings.ENABLED or not task_id or not _fits_task_id_column(str(task_id)):
        yield None
        return
    handed_over = synchronous and in_callers_transaction(settings.DATABASE)
    install_stream_proxies()
    if settings.CAPTURE_LOGGING:
        install_logging_handler()
    enclosing = current_capture.get()
    if enclosing is not None and enclosing.task_id == str(task_id):
        # An eager retry nests: the earlier attempt's lines come first.
        enclosing.flush_soon_and_wait()
    capture = TaskCapture(
        task_id,
        task_name=task_name,
        worker=worker,
        origin=origin,
        attempt_reason=attempt_reason,
        synchronous=synchronous and not handed_over,
        fallback=write_to_worker_output,
    )
    descriptors = DescriptorCapture(capture).start() if _captures_descriptors(synchronous) else None
    token = current_capture.set(capture)
    if not capture.synchronous:
        get_flusher().add(capture)
    try:
        yield capture
    except BaseException as error:
        record_exception(capture, error)
        raise
    finally:
        current_capture.reset(token)
        if descriptors is not None:
            descriptors.stop()
        # SQLite has one writer: the caller's open transaction may hold it until we return.
        finish(capture, wait=not (handed_over and _is_sqlite(settings.DATABASE)))


def in_callers_transaction(alias: str) -> bool:
    """Whether this thread's connection to ``alias`` is inside a transaction its code opened.

    Writing the log there would tie the log to that transaction (a rollback would lose it) and
    a failing write could break it; such runs are stored by the flusher on its own connection.
    The atomic blocks a Django test case wraps each test in are not the caller's (Django's
    ``durable`` check says the same), so tests still see eager logs inside their transaction.
    """
    connection = connections[alias]
    if connection.in_atomic_block:
        return any(not block._from_testcase for block in connection.atomic_blocks)
    return connection.connection is not None and not connection.get_autocommit()


def _fits_task_id_column(task_id: str) -> bool:
    limit = TaskLog._meta.get_field("task_id").max_length
    if len(task_id) <= limit:
        return True
    with bypass():
        logger.warning(
            "tasklog: task id of %s characters not captured (the task_id column holds %s): %s…",
            len(task_id),
            limit,
            task_id[:40],
        )
    return False


def _is_sqlite(alias: str) -> bool:
    return connections[alias].vendor == "sqlite"


def _captures_descriptors(eager: bool) -> bool:
    pool = worker_pool["name"]
    return (
        settings.CAPTURE_FD and not eager and pool is not None and not tasks_share_a_process(pool)
    )


def record_exception(capture: TaskCapture, error: BaseException) -> None:
    """How a run ended early: a retry or an ignore is a marker, anything else a traceback.

    Unfinished lines are ended first: they were written before the error.
    """
    capture.close_writers()
    signum = _terminating_signal(error)
    if isinstance(error, Retry):
        capture.add_line(Stream.MARKER, f"Attempt ended: {error}")
    elif isinstance(error, Ignore | Reject):
        capture.add_line(Stream.MARKER, f"Attempt ended: {type(error).__name__} {error}".strip())
    elif signum is not None:
        name = signal_name(signum)
        capture.add_line(Stream.MARKER, f"Attempt ended: the worker process received {name}.")
    else:
        writer = capture.writer(Stream.STDERR, "traceback")
        writer.write("".join(traceback.format_exception(error)))
        writer.close()


def _terminating_signal(error: BaseException) -> int | None:
    """The signal behind billiard's ``SystemExit(-(256 - signum))`` in a pool process (how a
    ``revoke(terminate=True)`` ends a task), else None."""
    if isinstance(error, SystemExit) and isinstance(error.code, int) and -255 <= error.code < -192:
        return 256 + error.code
    return None


def finish(capture: TaskCapture, wait: bool = True) -> None:
    """Store the last lines and close the run; ``wait=False`` leaves the last flush to the
    flusher without waiting for it."""
    capture.close_writers()
    if not capture.synchronous:
        get_flusher().close(capture, wait=wait)
        return
    for _attempt in range(FINAL_FLUSH_ATTEMPTS):  # no flusher will come back for these lines
        if capture.flush(final=True):
            return
    capture.discard_unstored()


def capture_task_run(task):
    """``capture_output`` for the current run of a Celery task, described by its request."""
    request = task.request
    if not request.id or not settings.ENABLED:
        return nullcontext()
    eager = bool(request.is_eager)
    origin = getattr(request, ORIGIN_HEADER, None)
    if origin is None and eager:
        origin = origin_for_publish()
    return capture_output(
        request.id,
        task_name=task.name or "",
        worker=request.hostname or "",
        origin=origin_fields(origin),
        attempt_reason=attempt_reason(request),
        synchronous=eager,
    )


def attempt_reason(request) -> str:
    if request.retries:
        return f"retry {request.retries}"
    if (request.delivery_info or {}).get("redelivered"):
        return "redelivered"
    return ""


def in_task_context(function: Callable) -> Callable:
    """Wrap ``function`` so that, run in another thread, its output goes to the current task's
    log (threads do not inherit context variables). Output after the task ended reaches the
    worker's own output instead."""
    context = contextvars.copy_context()

    @functools.wraps(function)
    def run_in_context(*args, **kwargs):
        return context.copy().run(function, *args, **kwargs)

    return run_in_context
