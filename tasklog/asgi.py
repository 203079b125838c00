"""``shared_thread_for_live_logs``: live log streams share one thread for their sync middleware.

Under ASGI, Django gives every request its own thread for sync code (middleware such as
sessions, CSRF and messages runs there: ``MiddlewareMixin`` calls it ``thread_sensitive``),
and that thread lives until the response is closed. For a live log that is half an hour: 200
viewers, 200 idle threads. The SSE view itself touches the database only on the shared pool
(``pooled``), so its requests need no thread of their own; this wrapper runs their sync
middleware on one shared thread instead. Other requests are left as Django runs them.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.urls import Resolver404, resolve

STREAM_VIEW = ("tasklog", "task_log_events")


def shared_thread_for_live_logs(application):
    """Wrap a Django ASGI application; a no-op with asgiref older than 3.13."""
    if "executor" not in inspect.signature(ThreadSensitiveContext).parameters:
        return application
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklog-streams")

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or not is_live_log(scope["path"]):
            return await application(scope, receive, send)
        async with ThreadSensitiveContext(executor=executor):
            return await application(scope, receive, send)

    return wrapped


def is_live_log(path: str) -> bool:
    """Whether ``path`` is the SSE endpoint of a task log (under any include prefix)."""
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return (match.app_name, match.url_name) == STREAM_VIEW
