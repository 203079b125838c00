"""Sections of a log: ``::group::Title`` ... ``::endgroup::`` groups, nested, and retry attempts.

The syntax is GitHub Actions' (Airflow reads it too). A retry's attempt marker ("Attempt 2
started ...") begins a new top-level section and closes every group the previous attempt left
open. Sections are worked out when lines are read, from the few lines that open or close one,
so a group opened on line 10 is known on line 900,000 without reading what lies between.

No Django import here: ``tasklog.group`` works wherever the package is importable.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

GROUP_START = "::group::"
GROUP_END = "::endgroup::"
ATTEMPT_PREFIX = "Attempt "
ATTEMPT = re.compile(r"Attempt \d+\b.* started\b")


LINE, GROUP_START_KIND, GROUP_END_KIND, ATTEMPT_KIND = "line", "group_start", "group_end", "attempt"


def line_kind(stream: str, message: str) -> str:
    if message.startswith(GROUP_START):
        return GROUP_START_KIND
    if message.startswith(GROUP_END):
        return GROUP_END_KIND
    if stream == "marker" and ATTEMPT.match(message):
        return ATTEMPT_KIND
    return LINE


def group_title(message: str) -> str:
    return message[len(GROUP_START) :].strip()


def is_error(line) -> bool:
    """Lines that open the group they are in: stderr, and records at ERROR or above."""
    return line.stream == "stderr" or (line.level or 0) >= logging.ERROR


@dataclass
class OpenGroup:
    seq: int
    title: str
    started: datetime | None = None  # the timestamp of its first line

    def as_dict(self) -> dict:
        return {"seq": self.seq, "title": self.title}


class Place(NamedTuple):
    """Where a line sits among the sections.

    ``depth`` counts the groups the line is inside (a group's own start and end lines sit at
    the depth of the group around them); ``group`` is the seq of the innermost one, 0 at the
    top; ``closed`` is the group that a ``group_end`` line closes.
    """

    kind: str
    depth: int
    group: int
    closed: OpenGroup | None = None


@dataclass
class SectionTracker:
    """Follows the group stack line by line."""

    stack: list[OpenGroup] = field(default_factory=list)

    def place(self, seq: int, stream: str, message: str, timestamp=None) -> Place:
        """Where the line sits; then the stack moves past it."""
        kind = line_kind(stream, message)
        closed = None
        if kind == GROUP_END_KIND and self.stack:
            closed = self.stack.pop()
        elif kind == ATTEMPT_KIND:
            self.stack.clear()
        place = Place(kind, len(self.stack), self.stack[-1].seq if self.stack else 0, closed)
        if kind == GROUP_START_KIND:
            self.stack.append(OpenGroup(seq, group_title(message), timestamp))
        return place

    def open_groups(self) -> list[dict]:
        return [group.as_dict() for group in self.stack]


def section_lines(lines) -> Iterator[tuple[int, str, str, datetime]]:
    """``(seq, stream, message, timestamp)`` of the lines that open or close a section."""
    return lines.section_rows()


def is_section_line(line) -> bool:
    """Whether ``line`` may open or close a section: the Python twin of the condition of the
    partial index (``querysets.SECTION_LINES``)."""
    message = line.message
    return (
        message.startswith(GROUP_START)
        or message.startswith(GROUP_END)
        or (line.stream == "marker" and message.startswith(ATTEMPT_PREFIX))
    )


class Placer:
    """Places pages of lines, read in ascending seq order, among the sections of their log.

    ``lines`` are the task's lines before any filter: a page of search hits is placed among the
    group lines between the hits too. Only the lines that open or close a section are read
    (through the partial index), from the start of the log for the first page and then only
    between one page and the next.
    """

    def __init__(self, lines):
        self.lines = lines
        self.tracker: SectionTracker | None = None
        self.placed_through = 0
        self.open_at_start: list[dict] = []

    def place(self, page: list) -> list[tuple]:
        """``[(line, Place), ...]`` for a page whose lines all follow the previous page's."""
        if not page:
            return []
        if self.tracker is None:
            self.tracker = SectionTracker()
            self._advance(page[0].seq - 1)
            self.open_at_start = self.tracker.open_groups()
        between = iter(
            list(section_lines(self.lines.after(self.placed_through).before(page[-1].seq + 1)))
        )
        upcoming = next(between, None)
        result = []
        for line in page:
            while upcoming is not None and upcoming[0] < line.seq:
                self.tracker.place(*upcoming)
                upcoming = next(between, None)
            if upcoming is not None and upcoming[0] == line.seq:
                upcoming = next(between, None)
            place = self.tracker.place(line.seq, line.stream, line.message, line.timestamp)
            result.append((line, place))
        self.placed_through = page[-1].seq
        return result

    def _advance(self, through: int) -> None:
        for section_line in section_lines(self.lines.before(through + 1)):
            self.tracker.place(*section_line)
        self.placed_through = through


def placed(page: list, lines) -> tuple[list[tuple], list[dict]]:
    """``sections.Placer`` for one page: its lines placed, and the groups open before it."""
    placer = Placer(lines)
    return placer.place(page), placer.open_at_start


MAX_SUMMARIES = 100
"""Groups summed up per page at most: each costs a read of its own lines."""


def summaries(lines, starts: list[tuple[int, datetime | None]]) -> dict[int, dict]:
    """For each group opened on a page, ``{seq: {"end", "lines", "duration", "error"}}``.

    ``end`` is the seq of the line that closes it (its ``::endgroup::``, or the next attempt's
    marker), null while it is open; ``lines`` counts the lines inside; ``duration`` is seconds
    from its first to its last line, null while open; ``error`` says whether a line inside is
    an error (``is_error``), so a client can open a folded group that holds one. Ends are found
    among the section lines (the partial index); each ``error`` is one indexed range read that
    stops at the first error.
    """
    starts = starts[:MAX_SUMMARIES]
    if not starts:
        return {}
    ends = _ends(lines, [seq for seq, _timestamp in starts])
    last = lines.seq_from_end(1) or 0
    result = {}
    for seq, started in starts:
        end, ended = ends.get(seq, (None, None))
        inside = lines.after(seq) if end is None else lines.after(seq).before(end)
        result[seq] = {
            "end": end,
            "lines": (end if end is not None else last + 1) - seq - 1,
            "duration": (ended - started).total_seconds() if ended and started else None,
            "error": inside.errors().exists(),
        }
    return result


def _ends(lines, starts: list[int]) -> dict[int, tuple[int, datetime]]:
    """``{start seq: (end seq, end timestamp)}`` for the groups opened at ``starts``."""
    wanted, stack, ends = set(starts), [], {}
    for seq, stream, message, timestamp in section_lines(lines.after(min(starts) - 1)):
        kind = line_kind(stream, message)
        if kind == GROUP_START_KIND:
            stack.append(seq)
        elif kind == GROUP_END_KIND and stack:
            opened = stack.pop()
            if opened in wanted:
                ends[opened] = (seq, timestamp)
        elif kind == ATTEMPT_KIND:
            for opened in stack:
                if opened in wanted:
                    ends[opened] = (seq, timestamp)
            stack.clear()
        if len(ends) == len(wanted):
            break
    return ends


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """Write ``::group::title`` before the block and ``::endgroup::`` after it, on stdout.

    The title is one line: line breaks in it become spaces.
    """
    title = " ".join(str(title).splitlines())
    print(f"{GROUP_START}{title}", flush=True)
    try:
        yield
    finally:
        print(GROUP_END, flush=True)
