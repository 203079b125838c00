"""``shared_thread_for_live_logs`` picks out the SSE endpoint's requests, and only those."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.urls import reverse

from tasklog.asgi import is_live_log, shared_thread_for_live_logs

EVENTS = reverse("tasklog:task_log_events", args=["nightly report/2024 #1"])


@pytest.mark.parametrize(
    ("path", "live"),
    [
        (EVENTS, True),
        (reverse("tasklog:task_log_events", args=["abc"]), True),
        (reverse("tasklog:task_log", args=["abc"]), False),
        (reverse("tasklog:task_log_lines", args=["abc"]), False),
        ("/admin/login/", False),
        ("/tasklog/~not base64!/events/", False),
        ("/" + "é/" * 500, False),
    ],
)
@pytest.mark.abuse
def test_only_the_event_stream_is_a_live_log(path, live):
    assert is_live_log(path) is live


def test_live_log_requests_share_one_thread_for_thread_sensitive_work():
    """Django's ASGI handler opens a context per request: a thread of its own, unless wrapped."""
    seen = []

    async def application(scope, receive, send):
        async with ThreadSensitiveContext():
            seen.append(await sync_to_async(threading.get_ident)())
            await asyncio.sleep(0.05)  # all requests are in flight at once

    wrapped = shared_thread_for_live_logs(application)

    async def requests(path):
        scope = {"type": "http", "path": path}
        await asyncio.gather(*(wrapped(scope, None, None) for _ in range(5)))

    asyncio.run(requests(EVENTS))
    assert len(set(seen)) == 1 and seen[0] != threading.get_ident()
    seen.clear()
    asyncio.run(requests("/admin/login/"))
    assert len(set(seen)) == 5
