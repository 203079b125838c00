"""The live log component: what its template needs to render one task's log.

The task page and the ``{% tasklog_live %}`` tag render the same component
(``tasklog/live.html``): the last lines rendered by the server, so it reads without its script,
and the JSON config from which ``tasklog.js`` takes over (each element its own, no global ids).
"""

from __future__ import annotations

import re

from django.urls import reverse
from django.utils.http import urlencode

from . import shares
from .models import Level, Stream, TaskLog, TaskLogLine
from .sections import ATTEMPT_PREFIX
from .serializers import line_as_dict, task_as_dict

PAGE_SIZE = 500
MAX_ATTEMPT_MARKERS = 1000
"""Attempt markers sent with the page at most: two an attempt (how it began, how it ended)."""

# What ansi.js removes too: CSI (colours, cursor moves), OSC (titles, links), lone ESCs.
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b")


def component_context(
    task_id: str, log: TaskLog | None, result, *, share: str | None = None
) -> dict:
    """The template context of the component for a task (its log and result rows may be None).

    ``share``: the share token the page was opened with, carried on to the endpoints.
    """
    task = task_as_dict(log, result)
    task["task_id"] = task_id
    lines = TaskLogLine.objects.for_task(task_id, log=log).tail(PAGE_SIZE)
    line_dicts = [line_as_dict(line) for line in lines]
    rendered = [
        line | {"clock": clock_time(line), "text": without_escapes(line["message"])}
        for line in line_dicts
    ]
    return {
        "task": task,
        "log": log,
        "download_url": endpoint_url("tasklog:task_log_download", task_id, share),
        "lines": rendered,
        "streams": Stream.values,  # the reader's filters
        "levels": Level.labels,
        "client_data": {
            "task": task,
            "lines": line_dicts,
            "attempt_markers": attempt_markers(task_id, log),
            "has_earlier": len(lines) == PAGE_SIZE and lines[0].seq > 1,
            "page_size": PAGE_SIZE,
            "events_url": endpoint_url("tasklog:task_log_events", task_id, share),
            "lines_url": endpoint_url("tasklog:task_log_lines", task_id, share),
        },
    }


def attempt_markers(task_id: str, log: TaskLog | None) -> list[dict]:
    """The marker lines where a retried task's attempts begin and end, wherever they are in the
    log: the reader folds each attempt from the start, not only those among the lines it has
    loaded. Read through the partial index of section lines; nothing for a task run once."""
    if log is None or log.attempts < 2:
        return []
    lines = TaskLogLine.objects.for_task(task_id, log=log).in_streams(Stream.MARKER).sections()
    return [
        line_as_dict(line)
        for line in lines.head(MAX_ATTEMPT_MARKERS)
        if line.message.startswith(ATTEMPT_PREFIX)
    ]


def endpoint_url(name: str, task_id: str, share: str | None) -> str:
    """The URL of one of the task's endpoints, carrying the share token the page was opened with."""
    url = reverse(name, args=[task_id])
    return f"{url}?{urlencode({shares.QUERY_PARAMETER: share})}" if share else url


def without_escapes(message: str) -> str:
    """The message as the page shows it before its script runs: text without escape codes."""
    return ESCAPES.sub("", message)


def clock_time(line: dict) -> str:
    """``HH:MM:SS.mmm`` of a line (UTC), as the server-rendered page shows it."""
    return line["timestamp"][11:23] if line["timestamp"] else ""
