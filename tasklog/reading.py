"""Reading a task's log in a terminal: choosing lines, and formatting them a page at a time.

A log may hold a million lines. Lines are read in pages keyed by seq, through the (task_id, seq)
index, so memory stays flat and the first page appears at once whatever the size of the log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tabulate import MIN_PADDING, tabulate

from . import sections
from .models import Stream
from .portable import plain_text, record_text, style_name
from .results import effective_state
from .search import LineFilter
from .serializers import line_as_dict, task_as_dict
from .terminal import safe

PAGE_SIZE = 1000
LINE_HEADERS = ("seq", "time", "stream", "message")
STREAM_WIDTH = len("log CRITICAL")
TIME_WIDTH = len("00:00:00.000")
COLUMN_GAP = " " * MIN_PADDING
INDENT = "  "
GAP = "--"  # between two blocks of search hits with their context, as grep -C writes it

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
        return lines.seq_from_end(1) or 0
    boundary = lines.seq_from_end(count)
    return boundary - 1 if boundary else 0


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


def message_text(line) -> str:
    """The message, with a logging record's logger in front and its extra fields after."""
    return record_text(line.message, line.logger, line.extra)


def plain_line(line) -> str:
    """The line as the task wrote it; logging records keep their level in front."""
    return plain_text(line.stream, line.level_name, message_text(line))


def in_section(line, place, text: str, clean: Callable[[str], str]) -> str:
    """``text`` (cleaned) indented by the line's group depth; a group's first line shows as
    ``▸ Title``, its last as ``◂ Title: N lines, D`` (lines in between, first to last)."""
    if place is None:
        return clean(text)
    indent = INDENT * place.depth
    if place.kind == sections.GROUP_START_KIND:
        return f"{indent}▸ {clean(sections.group_title(line.message))}"
    if place.kind == sections.GROUP_END_KIND and place.closed is not None:
        group = place.closed
        inside = line.seq - group.seq - 1
        duration = line.timestamp - group.started if group.started else None
        summary = f"{inside:,} line{'s' if inside != 1 else ''}"
        if duration is not None:
            summary += f", {format_duration(duration)}"
        return f"{indent}◂ {clean(group.title)}: {summary}"
    return indent + clean(text)


@dataclass(frozen=True)
class Shown:
    """A line as a command shows it: its place among the sections, whether it matches the
    search (None without ``--context``) and whether lines were left out before it."""

    line: object
    place: sections.Place | None = None
    match: bool | None = None
    gap: bool = False


def shown_pages(
    lines,
    chosen: LineFilter,
    *,
    since: datetime | None = None,
    head: int | None = None,
    tail: int | None = None,
    context: int | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[list[Shown]]:
    """The pages a command shows of ``lines`` (a task's lines): those ``chosen`` keeps, the
    first ``head`` or last ``tail`` of them, each hit of the search with ``context`` lines
    around it (blocks apart marked, as grep -C does, even with 0), every line placed among
    the sections."""
    base = lines.since(since) if since is not None else lines
    placer = sections.Placer(lines)
    if context is not None and chosen.searching:
        unsearched = replace(chosen, text="", regex=False)
        pages = context_pages(
            base.chosen_by(unsearched),
            base.chosen_by(chosen),
            chosen,
            context,
            chosen_pages(base.chosen_by(chosen), head=head, tail=tail, page_size=page_size),
        )
        for page in pages:
            placed = placer.place([item.line for item in page])
            yield [
                replace(item, place=place)
                for item, (_line, place) in zip(page, placed, strict=True)
            ]
        return
    for page in chosen_pages(base.chosen_by(chosen), head=head, tail=tail, page_size=page_size):
        yield [Shown(line, place) for line, place in placer.place(page)]


def context_pages(base, hits, chosen: LineFilter, context: int, hit_pages) -> Iterator[list]:
    """Each hit with ``context`` lines of ``base`` before and after it, as grep -C shows them:
    overlapping blocks merge, a gap between blocks is marked. Two or three indexed queries a
    hit: the cost grows with the hits shown, not with the log."""
    marked = base.marking(chosen.text, regex=chosen.regex)
    last = 0
    for hit_page in hit_pages:
        page = []
        for hit in hit_page:
            if hit.seq > last:
                before = marked.after(last).before(hit.seq).tail(context)
                first = before[0].seq if before else hit.seq
                gap = last > 0 and base.after(last).before(first).exists()
                block = [*before, hit]
                page += [
                    Shown(line, match=line is hit or bool(line.match), gap=gap and index == 0)
                    for index, line in enumerate(block)
                ]
                last = hit.seq
            after = [line for line in marked.after(hit.seq).head(context) if line.seq > last]
            page += [Shown(line, match=bool(line.match)) for line in after]
            last = max(last, after[-1].seq if after else last)
        if page:
            yield page


def line_style(line, style) -> Callable[[str], str]:
    """The colour of a line in a terminal: stderr and warnings stand out, markers are notices."""
    name = style_name(line.stream, line.level_name)
    return getattr(style, name) if name else str


def table_page(
    page: list[Shown], *, seq_width: int, with_headers: bool, clean: Callable[[str], str] = str
) -> str:
    """One page of lines as table rows whose columns line up with every other page's.

    Laid out by hand rather than by tabulate, which strips the cells: a message keeps its
    leading whitespace (a traceback's indentation and its ``^^^^`` markers). ``clean`` makes
    each cell fit for the terminal (``tasklog.terminal``).
    """
    seq_width = max(seq_width, len("seq") + MIN_PADDING)
    widths = (seq_width, TIME_WIDTH, STREAM_WIDTH)
    rows = []
    for shown in page:
        line = shown.line
        if shown.gap:
            rows.append((GAP,))
        rows.append(
            (
                str(line.seq).rjust(seq_width),
                clock_time(line.timestamp),
                clean(stream_label(line)).ljust(STREAM_WIDTH),
                in_section(line, shown.place, message_text(line), clean),
            )
        )
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
        *([("Archived", local_time(log.archived))] if log.archived else []),
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


def shown_as_dict(shown: Shown) -> dict:
    data = line_as_dict(shown.line, shown.place)
    if shown.match is not None:
        data["match"] = shown.match
    return data


def json_chunks(log, result, line_pages: Iterable[list[Shown]]) -> Iterator[str]:
    """The SPEC's JSON document for a log, as chunks of text of one line of the log each."""
    yield '{"task": ' + json.dumps(task_as_dict(log, result)) + ', "lines": ['
    separator = "\n"
    for page in line_pages:
        for shown in page:
            yield separator + json.dumps(shown_as_dict(shown))
            separator = ",\n"
    yield "\n]}\n"


def ndjson_page(page: list[Shown]) -> str:
    """One JSON object per line, for ``jq``; non-ASCII escaped, so no control reaches the
    terminal as it is."""
    return "".join(json.dumps(shown_as_dict(shown)) + "\n" for shown in page)


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
