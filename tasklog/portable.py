"""The pieces of reading a log that need no Django settings, shared by the server side and the
remote follower (``tasklog-follow`` runs on a laptop without the site's settings).

How a task id appears in a URL segment, how a line reads as plain text and which colour it
gets, what a follower's exit status means, and how a command ends when its reader is gone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import signal
import sys

VERBATIM_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=\-]{0,254}")
ENCODED_MARKER = "~"
RESERVED_SEGMENTS = frozenset({"diagnostic"})  # path segments of other views, never a task id

SUCCESSFUL_STATES = frozenset({"SUCCESS", "FINISHED"})
EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130
EXIT_READER_GONE = 128 + signal.SIGPIPE  # 141: what a shell reports for `cat big | head`


@contextlib.contextmanager
def quiet_when_reader_leaves():
    """End with ``EXIT_READER_GONE`` and no traceback when standard output's reader leaves.

    ``tasklog_show ID | head`` closes the pipe after ten lines; the next write raises
    ``BrokenPipeError``. Standard output then points at /dev/null, so that the interpreter's
    last flush of it at exit cannot fail again (the recipe in Python's ``signal`` docs).
    Usable as a decorator too.
    """
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_READER_GONE) from None


def task_id_segment(task_id: str) -> str:
    """The one URL path segment of ``task_id`` (see ``urls.TaskIdConverter``)."""
    if VERBATIM_TASK_ID.fullmatch(task_id) and task_id not in RESERVED_SEGMENTS:
        return task_id
    encoded = base64.urlsafe_b64encode(task_id.encode("utf-8", "surrogatepass")).rstrip(b"=")
    return ENCODED_MARKER + encoded.decode("ascii")


_WORD = re.compile(r"[\w.:/@+-]+")


def extra_as_text(extra: dict | None) -> str:
    """`` key=value key2="a b"``: a record's extra fields beside its line; keys and values that
    are not single words are JSON-quoted, so the text stays one unambiguous line."""
    if not extra:
        return ""
    return " " + " ".join(f"{_word_or_json(k)}={_word_or_json(v)}" for k, v in extra.items())


def _word_or_json(value) -> str:
    return value if isinstance(value, str) and _WORD.fullmatch(value) else json.dumps(value)


def record_text(message: str, logger: str = "", extra: dict | None = None) -> str:
    """The message, with a logging record's logger in front and its extra fields after."""
    return (f"{logger}: {message}" if logger else message) + extra_as_text(extra)


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
