"""Sections of a log: ``::group::Title`` ... ``::endgroup::`` groups, nested, and retry attempts.

The syntax is GitHub Actions' (Airflow reads it too). A retry's attempt marker ("Attempt 2
started ...") begins a new top-level section and closes every group the previous attempt left
open. Sections are worked out when lines are read, from the few lines that open or close one,
so a group opened on line 10 is known on line 900,000 without reading what lies between.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Q

GROUP_START = "::group::"
GROUP_END = "::endgroup::"
ATTEMPT = re.compile(r"Attempt \d+\b.* started\b")

SECTION_LINES = (
    Q(message__startswith=GROUP_START)
    | Q(message__startswith=GROUP_END)
    | Q(stream="marker", message__startswith="Attempt ")
)
"""The lines that may open or close a section; the condition of a partial index."""

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
    started: object = None  # the timestamp of its first line, when known

    def as_dict(self) -> dict:
        return {"seq": self.seq, "title": self.title}


@dataclass
class SectionTracker:
    """Follows the group stack line by line; ``place(line)`` says where a line sits in it."""

    stack: list[OpenGroup] = field(default_factory=list)

    def place(self, seq: int, stream: str, message: str, timestamp=None) -> tuple[str, int, int]:
        """``(kind, depth, group)`` of a line, then the stack moves past it.

        ``depth`` counts the groups the line is inside (a group's own start and end lines sit
        at the depth of the group around them); ``group`` is the seq of the innermost one, 0
        at the top.
        """
        kind = line_kind(stream, message)
        if kind == GROUP_END_KIND and self.stack:
            self.stack.pop()
        elif kind == ATTEMPT_KIND:
            self.stack.clear()
        depth, group = len(self.stack), self.stack[-1].seq if self.stack else 0
        if kind == GROUP_START_KIND:
            self.stack.append(OpenGroup(seq, group_title(message), timestamp))
        return kind, depth, group

    def open_groups(self) -> list[dict]:
        return [group.as_dict() for group in self.stack]


def tracker_before(lines, seq: int) -> SectionTracker:
    """The group stack just before line ``seq`` of ``lines`` (a task's unfiltered lines)."""
    tracker = SectionTracker()
    for line_seq, stream, message in section_lines(lines.before(seq)):
        tracker.place(line_seq, stream, message)
    return tracker


def section_lines(lines) -> Iterator[tuple[int, str, str]]:
    """``(seq, stream, message)`` of the lines that open or close a section, in seq order."""
    return (
        lines.sections()
        .order_by("seq")
        .values_list("seq", "stream", "message")
        .iterator(chunk_size=2000)
    )


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


def placed(page: list, lines) -> tuple[list[tuple], list[dict]]:
    """Where each line of ``page`` sits: ``[(line, (kind, depth, group)), ...]``, and the groups
    open before its first line. ``lines`` are the task's lines before any filter: a page of
    search hits is placed among the group lines between the hits too."""
    if not page:
        return [], []
    tracker = tracker_before(lines, page[0].seq)
    open_at_start = tracker.open_groups()
    between = section_lines(lines.after(page[0].seq - 1).before(page[-1].seq + 1))
    upcoming = next(between, None)
    result = []
    for line in page:
        while upcoming is not None and upcoming[0] < line.seq:
            tracker.place(*upcoming)
            upcoming = next(between, None)
        if upcoming is not None and upcoming[0] == line.seq:
            upcoming = next(between, None)
        result.append((line, tracker.place(line.seq, line.stream, line.message)))
    return result, open_at_start
