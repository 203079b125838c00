"""Reading a task's log in a terminal: choosing lines, and formatting them a page at a time.

A log may hold a million lines. Lines are read in pages keyed by seq, through the (task_id, seq)
index, so memory stays flat and the first page appears at once whatever the size of the log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tabulate import MIN_PADDING, tabulate

from .models import Stream
from .portable import plain_text, style_name
from .results import effective_state
from .serializers import line_as_dict, task_as_dict
from .terminal import safe

PAGE_SIZE = 1000
LINE_HEADERS = ("seq", "time", "stream", "message")
STREAM_WIDTH = len("log CRITICAL")
TIME_WIDTH = len("00:00:00.000")
COLUMN_GAP = " " * MIN_PADDING

_AGE = re.compile(r"^\s*([0-9]+)\s*([smhd])\s*$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta | None:
    """The span named by an age such as ``90s``, ``10m``, ``2h``, ``1d``; None for other text."""
    age = _AGE.match(text)
    if age is None:
        return None
    amount, unit = age.groups()
    try:
        return timedelta(**{_AGE_UNITS[unit]: int(amount)})
    except (OverflowError, ValueError):  # beyond timedelta, or too many digits for int()
        return None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment named by an ISO 8601 time or an age such as ``90s``, ``10m``, ``2h``, ``1d``.

    A time without an offset is in the current time zone. Raises ``ValueError`` with a message
    fit for the user.
    """
    age = parse_age(text)
    if age is not None:
        try:
            return (now or timezone.now()) - age
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        moment = parse_datetime(text.strip())
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2024-05-01T12:00) nor an age (10m, 2h, 1d)"
        )
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def seq_before_tail(lines, count: int) -> int:
    """The seq after which the last ``count`` of ``lines`` start (0 when there are fewer)."""
    if count <= 0:
        return lines.order_by("-seq").values_list("seq", flat=True).first() or 0
    boundary = lines.order_by("-seq").values_list("seq", flat=True)[count - 1 : count]
    return boundary[0] - 1 if boundary else 0


def chosen_pages(
    lines, *, head: int | None = None, tail: int | None = None, page_size: int = PAGE_SIZE
) -> Iterator[list]:
    """The pages of ``lines``, only the first ``head`` or the last ``tail`` of them if given."""
    after = seq_before_tail(lines, tail) if tail is not None else 0
    remaining = head
    for page in lines.pages(after, page_size):
        if remaining is not None:
            page = page[:remaining]
            remaining -= len(page)
        if page:
            yield page
        if remaining == 0:
            return


def stream_label(line) -> str:
    if line.stream == Stream.LOG and line.level is not None:
        return f"log {line.level_name}"
    return line.stream


def clock_time(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%H:%M:%S.%f")[:-3]


def local_time(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "-"


def format_duration(duration: timedelta | None) -> str:
    if duration is None:
        return "-"
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.3f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{seconds:02}"


def plain_line(line) -> str:
    """The line as the task wrote it; logging records keep their level in front."""
    return plain_text(line.stream, line.level_name, line.message)


def line_style(line, style) -> Callable[[str], str]:
    """The colour of a line in a terminal: stderr and warnings stand out, markers are notices."""
    name = style_name(line.stream, line.level_name)
    return getattr(style, name) if name else str


def table_page(
    page: list, *, seq_width: int, with_headers: bool, clean: Callable[[str], str] = str
) -> str:
    """One page of lines as table rows whose columns line up with every other page's.

    Laid out by hand rather than by tabulate, which strips the cells: a message keeps its
    leading whitespace (a traceback's indentation and its ``^^^^`` markers). ``clean`` makes
    each cell fit for the terminal (``tasklog.terminal``).
    """
    seq_width = max(seq_width, len("seq") + MIN_PADDING)
    widths = (seq_width, TIME_WIDTH, STREAM_WIDTH)
    rows = [
        (
            str(line.seq).rjust(seq_width),
            clock_time(line.timestamp),
            clean(stream_label(line)).ljust(STREAM_WIDTH),
            clean(line.message),
        )
        for line in page
    ]
    if with_headers:
        headers = ("seq".rjust(seq_width), "time".ljust(TIME_WIDTH), "stream".ljust(STREAM_WIDTH))
        rules = tuple("-" * width for width in (*widths, len("message") + MIN_PADDING))
        rows[:0] = [(*headers, "message"), rules]
    return "\n".join(COLUMN_GAP.join(row) for row in rows)


def task_header(log, result) -> str:
    """The summary above a log: name, state, timings and how many lines were kept.

    A task name or id can hold anything: both are shown through ``tasklog.terminal.safe``.
    """
    rows = [
        ("Task", safe(f"{log.task_name or '-'} [{log.task_id}]")),
        ("State", safe(effective_state(log, result))),
        *[(name, safe(value)) for name, value in queue_rows(log)],
        ("Started", local_time(log.started)),
        ("Duration", format_duration(log.duration)),
        ("Lines", f"{log.lines} ({log.dropped} dropped)"),
        ("Truncated", "yes" if log.truncated else "no"),
    ]
    return tabulate(rows, tablefmt="plain")


def queue_rows(log) -> list[tuple[str, str]]:
    """When and where a task recorded at publication was queued, and how long it waited."""
    if log.queued is None:
        return []
    return [
        ("Queued", f"{local_time(log.queued)} ({log.queue or '?'})"),
        ("Queue wait", format_duration(log.queue_wait)),
    ]


def waiting_note(log) -> str:
    """What a follower says while the task waits for a worker."""
    return f"Waiting in queue {log.queue or '?'} since {local_time(log.queued)}..."


def json_chunks(log, result, line_pages: Iterable[list]) -> Iterator[str]:
    """The SPEC's JSON document for a log, as chunks of text of one line of the log each."""
    yield '{"task": ' + json.dumps(task_as_dict(log, result)) + ', "lines": ['
    separator = "\n"
    for page in line_pages:
        for line in page:
            yield separator + json.dumps(line_as_dict(line))
            separator = ",\n"
    yield "\n]}\n"


def tasks_table(logs: list, results: dict) -> str:
    """Recent tasks, one row each, with their state and line counts."""
    rows = [
        (
            safe(log.task_id),
            safe(log.task_name or "-"),
            safe(effective_state(log, results.get(log.task_id))),
            local_time(log.started),
            format_duration(log.duration),
            log.lines,
            log.dropped,
        )
        for log in logs
    ]
    headers = ("task id", "task", "state", "started", "duration", "lines", "dropped")
    return tabulate(
        rows, headers=headers, disable_numparse=True, colalign=("left",) * 5 + ("right",) * 2
    )
