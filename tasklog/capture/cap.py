"""``CELERY_TASKLOG_MAX_LINES``: which seqs a capped log keeps, and what its markers say.

The arithmetic only; the capture trims lines that can never be kept while they wait in memory,
and storage deletes the middle once the tail window moves past it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeptSeqs:
    """The seqs the cap keeps: ``1..head`` and ``start..``; all of them when ``head`` is None."""

    head: int | None = None
    start: int = 0

    def __contains__(self, seq: int) -> bool:
        return self.head is None or seq <= self.head or seq >= self.start

    def first_in(self, first: int, last: int) -> int | None:
        """The first kept seq of ``first..last``, or None (where a marker for it can go)."""
        if first in self:
            return first
        return max(first, self.start) if last >= self.start else None


class Cap:
    """Keep the head and the tail of a log, and one marker for the middle."""

    def __init__(self, max_lines: int):
        self.max_lines = max_lines
        self.head = max_lines // 2
        self.tail = max(max_lines - self.head - 1, 0)

    def kept_seqs(self, last_seq: int) -> KeptSeqs:
        if not self.max_lines or last_seq <= self.max_lines:
            return KeptSeqs()
        return KeptSeqs(self.head, last_seq - self.tail + 1)

    def discards(self, rel: int, newest_rel: int) -> bool:
        """Whether a waiting line can never be stored, whatever seq the run starts at."""
        return bool(self.max_lines) and self.head < rel < newest_rel - self.tail + 1

    def middle_marker(self, window_start: int) -> tuple[int, str]:
        """``(seq, message)`` of the marker standing for the dropped middle."""
        first, last = self.head + 1, window_start - 1
        return first, (
            f"{count_of_lines(last - first + 1)} not stored (seq {first} to {last}): "
            f"CELERY_TASKLOG_MAX_LINES={self.max_lines} keeps the first {self.head} "
            f"and the last {self.tail}."
        )


def count_of_lines(count: int) -> str:
    return f"{count:,} line" if count == 1 else f"{count:,} lines"
