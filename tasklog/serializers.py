"""The JSON shape shared by the lines endpoint, SSE and ``--format json`` of the commands."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from .portable import extra_as_text
from .results import effective_state, is_complete, is_interrupted, progress_of
from .sections import is_error, line_kind


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(delta) -> float | None:
    return delta.total_seconds() if delta is not None else None


def task_as_dict(log, result) -> dict:
    """The task header; ``complete`` says every line is stored (see ``results.is_complete``)."""
    now = timezone.now()
    duration = log.duration if log is not None else None
    return {
        "task_id": log.task_id if log is not None else getattr(result, "task_id", None),
        "task_name": (log.task_name if log is not None else "")
        or getattr(result, "task_name", "")
        or "",
        "state": effective_state(log, result, now),
        "complete": is_complete(log, result, now),
        "progress": progress_of(result),
        "queued": _iso(log.queued) if log is not None else None,
        "queue": log.queue if log is not None else "",
        "queue_wait": _seconds(log.queue_wait) if log is not None else None,
        "started": _iso(log.started) if log is not None else None,
        "finished": _iso(log.finished) if log is not None else None,
        "duration": _seconds(duration),
        "lines": log.lines if log is not None else 0,
        "dropped": log.dropped if log is not None else 0,
        "truncated": log.truncated if log is not None else False,
        "attempts": log.attempts if log is not None else 0,
        "worker": log.worker if log is not None else "",
        "interrupted": is_interrupted(log, now),
        "launched_by": log.launched_by if log is not None else "",
        "launched_from": log.launched_from if log is not None else "",
        "archived": _iso(log.archived) if log is not None else None,
    }


def line_as_dict(line, place=None) -> dict:
    """A line for JSON readers; ``place`` is its ``sections.Place`` (kind, depth, group):
    without it, depth and group are null."""
    kind, depth, group = place[:3] if place else (line_kind(line.stream, line.message), None, None)
    data = {
        "seq": line.seq,
        "timestamp": _iso(line.timestamp),
        "stream": line.stream,
        "level": line.level_name,
        "logger": line.logger,
        "extra": line.extra,
        "message": line.message,
        "kind": kind,
        "depth": depth,
        "group": group,
        "error": is_error(line),
    }
    if hasattr(line, "match"):
        data["match"] = bool(line.match)
    return data


def line_as_text(line, clean: Callable[[str], str] = str) -> str:
    """``<timestamp> <stream>[:<level>] [<logger>] <message> key=value``: a line of the download.

    ``clean`` is applied to the message (the download strips escape sequences by default).
    """
    label = f"{line.stream}:{line.level_name}" if line.level is not None else line.stream
    logger = f" [{line.logger}]" if line.logger else ""
    message = clean(line.message) + extra_as_text(line.extra)
    return f"{line.timestamp.isoformat()} {label}{logger} {message}\n"
