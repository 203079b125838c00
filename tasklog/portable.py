"""The pieces of reading a log that need no Django settings, shared by the server side and the
remote follower (``tasklog-follow`` runs on a laptop without the site's settings).

How a task id appears in a URL segment, how a line reads as plain text and which colour it
gets, and what a follower's exit status means.
"""

from __future__ import annotations

import base64
import logging
import re

VERBATIM_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=\-]{0,254}")
ENCODED_MARKER = "~"
RESERVED_SEGMENTS = frozenset({"diagnostic"})  # path segments of other views, never a task id

SUCCESSFUL_STATES = frozenset({"SUCCESS", "FINISHED"})
EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130


def task_id_segment(task_id: str) -> str:
    """The one URL path segment of ``task_id`` (see ``urls.TaskIdConverter``)."""
    if VERBATIM_TASK_ID.fullmatch(task_id) and task_id not in RESERVED_SEGMENTS:
        return task_id
    encoded = base64.urlsafe_b64encode(task_id.encode("utf-8", "surrogatepass")).rstrip(b"=")
    return ENCODED_MARKER + encoded.decode("ascii")


def plain_text(stream: str, level_name: str | None, message: str) -> str:
    """A line as the task wrote it; logging records keep their level in front."""
    return f"{level_name}: {message}" if stream == "log" and level_name else message


def style_name(stream: str, level_name: str | None) -> str:
    """The colour of a line in a terminal, as a Django style name; "" for plain text.

    stderr and errors stand out, warnings are warnings, tasklog's own markers are notices.
    """
    level = logging.getLevelName(level_name) if level_name else 0
    level = level if isinstance(level, int) else 0
    if stream == "stderr" or level >= logging.ERROR:
        return "ERROR"
    if level >= logging.WARNING:
        return "WARNING"
    return "NOTICE" if stream == "marker" else ""
