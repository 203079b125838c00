"""Celery signal wiring: capture of every task (``CELERY_TASKLOG_ALL_TASKS``), retries, revokes,
and the worker's start and end."""

from __future__ import annotations

from django.utils import timezone

TASK_CAPTURE = "_tasklog_capture"


def connect_signals() -> None:
    from celery import signals

    signals.task_prerun.connect(start_capture, dispatch_uid="tasklog.start_capture")
    signals.task_failure.connect(store_failure, dispatch_uid="tasklog.store_failure")
    signals.task_retry.connect(store_retry, dispatch_uid="tasklog.store_retry")
    signals.task_postrun.connect(end_capture, dispatch_uid="tasklog.end_capture")
    signals.before_task_publish.connect(flush_before_retry, dispatch_uid="tasklog.flush_retry")
    signals.task_revoked.connect(close_revoked_run, dispatch_uid="tasklog.close_revoked")
    signals.worker_init.connect(check_worker, dispatch_uid="tasklog.check_worker")
    signals.worker_process_shutdown.connect(drain_flusher, dispatch_uid="tasklog.drain")


def _captures_itself(task) -> bool:
    from .tasks import TerminalLoggingTask

    return isinstance(task, TerminalLoggingTask)


def is_captured(task) -> bool:
    """Whether runs of ``task`` are captured: it is a ``TerminalLoggingTask``, or every task is."""
    from .conf import settings

    return settings.ENABLED and (settings.ALL_TASKS or _captures_itself(task))


def start_capture(sender=None, task_id=None, task=None, **kwargs) -> None:
    """``CELERY_TASKLOG_ALL_TASKS``: capture tasks that do not use ``TerminalLoggingTask``."""
    from .capture import capture_task_run
    from .conf import settings

    if task is None or not settings.ALL_TASKS or _captures_itself(task):
        return
    capture = capture_task_run(task)
    capture.__enter__()
    setattr(task.request, TASK_CAPTURE, capture)


def store_failure(sender=None, task_id=None, exception=None, einfo=None, **kwargs) -> None:
    """Signal-captured tasks: the traceback is stored (just after the FAILURE state, since
    Celery sends this signal after storing the result; ``TerminalLoggingTask`` stores it before)."""
    _record_in_signal_capture(sender, exception)


def store_retry(sender=None, request=None, reason=None, **kwargs) -> None:
    """Signal-captured tasks: the attempt ends with the same ``Attempt ended: Retry …`` marker
    that ``TerminalLoggingTask`` stores when the ``Retry`` leaves the task."""
    _record_in_signal_capture(sender, reason)


def _record_in_signal_capture(task, error) -> None:
    from .capture import active_capture, record_exception

    capture = active_capture()
    if capture is not None and task is not None and hasattr(task.request, TASK_CAPTURE):
        record_exception(capture, error)


def end_capture(sender=None, task_id=None, task=None, retval=None, **kwargs) -> None:
    """Close a signal-captured run; an ``Ignore`` or ``Reject`` (which Celery sends no signal
    for) ends it with the same marker as under ``TerminalLoggingTask``."""
    from celery.exceptions import Ignore, Reject

    capture = getattr(task.request, TASK_CAPTURE, None) if task is not None else None
    if capture is not None:
        if isinstance(retval, Ignore | Reject):
            _record_in_signal_capture(task, retval)
        delattr(task.request, TASK_CAPTURE)
        capture.__exit__(None, None, None)


def flush_before_retry(sender=None, headers=None, **kwargs) -> None:
    """A retry is published from inside the running attempt: store that attempt's lines first,
    so that the next attempt's lines follow them."""
    from .capture import active_capture

    capture = active_capture()
    if capture is not None and headers and headers.get("id") == capture.task_id:
        capture.flush_soon_and_wait()


def close_revoked_run(
    sender=None, request=None, terminated=False, signum=None, expired=False, **kwargs
) -> None:
    """A revoked run ends; one that was terminated gets a marker naming the signal (the worker
    process may have died before it could say anything itself), and a task revoked or expired
    while queued one saying it never started."""
    from .conf import settings
    from .models import TaskLog

    task_id = getattr(request, "id", None)
    if not task_id or not settings.ENABLED:
        return
    why = "Expired" if expired else "Revoked"
    TaskLog.objects.filter(task_id=task_id).queued().close_with_marker(
        lambda log: f"{why} while waiting in queue {log.queue or '?'}: the task never started."
    )
    if terminated:
        message = f"Revoked: the task was terminated with {signal_name(signum)}."
        TaskLog.objects.filter(task_id=task_id).close_with_marker(lambda log: message)
    else:
        now = timezone.now()
        TaskLog.objects.filter(task_id=task_id, finished__isnull=True).update(
            finished=now, last_seen=now
        )


def signal_name(signum) -> str:
    """``SIGTERM`` for 15 (or "SIGTERM"); the number itself when it names no signal."""
    import signal

    try:
        return signal.Signals(int(signum)).name
    except (TypeError, ValueError):
        return str(signum) if signum else "a signal"


def check_worker(sender=None, **kwargs) -> None:
    """Refuse to start a worker whose tasklog settings are invalid, with the check messages."""
    from . import capture
    from .checks import worker_errors
    from .pools import configured_pool_name

    pool = configured_pool_name(getattr(sender, "pool_cls", None))
    capture.worker_pool["name"] = pool
    errors = worker_errors(pool)
    if errors:
        raise SystemExit("celery-tasklog: " + "\n".join(str(error) for error in errors))


def drain_flusher(**kwargs) -> None:
    from .capture.flusher import drain

    drain()
