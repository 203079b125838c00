"""Who published a task: carried from the publishing process to the worker in a message header.

The middleware fills ``request_origin`` while a request is handled; the publish hook copies
``origin_for_publish()`` into the header ``ORIGIN_HEADER``; the worker stores it on the TaskLog.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar

from .conf import settings

ORIGIN_HEADER = "tasklog_origin"

request_origin: ContextVar[dict | None] = ContextVar("tasklog_request_origin", default=None)


def process_origin() -> str:
    """A short name for a publisher outside any request: ``celery beat``, ``manage.py shell``..."""
    argv = [arg.rsplit("/", 1)[-1] for arg in sys.argv[:3]]
    if "beat" in argv or any(arg.endswith("beat") for arg in argv):
        return "celery beat"
    if argv and argv[0] == "manage.py" and len(argv) > 1:
        return f"manage.py {argv[1]}"
    if argv and argv[0] in {"celery", "worker"}:
        return "celery worker"
    return " ".join(argv) or "python"


def origin_for_publish() -> dict:
    """The header value for a task published now: the request's user and path, else the process."""
    return request_origin.get() or {"from": process_origin()}


def origin_fields(origin: dict | None) -> dict:
    """TaskLog field values for a header value (which may be missing or malformed)."""
    if not isinstance(origin, dict):
        return {}
    return {
        "launched_by": str(origin.get("username") or "")[:150],
        "launched_by_user_id": str(origin.get("user_id") or "")[:64],
        "launched_from": str(origin.get("from") or "")[:255],
    }


def add_origin_header(sender=None, headers=None, **kwargs) -> None:
    """``before_task_publish`` receiver: tell the worker who publishes this task.

    A header already present is kept (a caller may set its own origin); nothing is added while
    capture is disabled, so that messages look exactly as without the app.
    """
    if headers is not None and ORIGIN_HEADER not in headers and settings.ENABLED:
        headers[ORIGIN_HEADER] = origin_for_publish()


def connect_publish_hook() -> None:
    from celery.signals import before_task_publish

    from .queued import record_queued

    before_task_publish.connect(add_origin_header, dispatch_uid="tasklog.origin.add_origin_header")
    before_task_publish.connect(record_queued, dispatch_uid="tasklog.queued.record_queued")
