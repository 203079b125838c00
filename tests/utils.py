"""Small readers of what the capture stored, and a poll for what a worker stores meanwhile,
shared by the test modules."""

import time

import pytest

from tasklog.models import TaskLog, TaskLogLine


def stored(task_id: str) -> list[tuple[int, str, str]]:
    """``(seq, stream, message)`` of every stored line of a task, in seq order."""
    return list(
        TaskLogLine.objects.for_task(task_id)
        .order_by("seq")
        .values_list("seq", "stream", "message")
    )


def messages(task_id: str, stream: str | None = None) -> list[str]:
    return [
        message for _seq, line_stream, message in stored(task_id) if stream in (None, line_stream)
    ]


def log_of(task_id: str) -> TaskLog:
    return TaskLog.objects.get(task_id=task_id)


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05):
    """``condition()``'s first truthy value, asked every ``interval`` s; the test fails after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s", pytrace=False)


RETRIES_IN_ORDER = {"pool": "threads", "concurrency": 1}
"""A worker for ``retry_twice`` (countdown 0): Celery stores an attempt's RETRY state, and we its
``Attempt ended`` marker, just *after* the retry is published, so on a free second slot the next
attempt could start first (its SUCCESS then overwritten by RETRY). One slot runs them in turn."""


def retried_twice_log(
    worker: str, second_line: str = "second line of this attempt", countdown: int = 0
) -> list[tuple[int, str, str]]:
    """The stored log of ``tests.tasks.retry_twice`` (and of the first three attempts of
    ``retry_twice_then_fail``): three attempts, one gap-free log."""
    attempt = [("stdout", "attempt with retries={}"), ("stderr", second_line)]
    lines = []
    for retries in range(3):
        if retries:
            lines.append(("marker", f"Attempt ended: Retry in {countdown}s"))
            lines.append(
                ("marker", f"Attempt {retries + 1} (retry {retries}) started on {worker}.")
            )
        lines += [(stream, text.format(retries)) for stream, text in attempt]
    return [(seq, stream, message) for seq, (stream, message) in enumerate(lines, start=1)]
