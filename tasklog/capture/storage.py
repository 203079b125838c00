"""Database writes of the capture: open a run, store a batch, close a run.

Storage is handed a batch and returns how far the run is stored (a ``Position``); it never
touches the capture. Its queries are methods of the querysets (``tasklog/querysets.py``).
Every write of a batch happens in one short transaction that locks the task's ``TaskLog`` row,
so two runs under the same task id (a retry racing its predecessor's last flush) number their
lines one after the other and never collide.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from django.db import DataError, IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from .. import push
from ..models import Stream, TaskLog, TaskLogLine
from .cap import Cap, KeptSeqs, count_of_lines
from .context import bypass, logger
from .lines import clean_text

LINE_COLUMNS = ("task_id", "seq", "timestamp", "stream", "level", "message", "logger", "extra")

# The database (or its driver, before sending) cannot reach the server: retry later, back off.
UNREACHABLE_ERRORS = (OperationalError, InterfaceError)
# The database (or its driver) refuses a value: retrying the same rows would fail forever.
REFUSED_VALUE_ERRORS = (DataError, IntegrityError, ValueError, TypeError, OverflowError)
REFUSAL_TEXT_LENGTH = 300

# Set while a flush inserts its rows whole, inside its transaction: a refusal rolls the flush
# back and it is tried again, so the insert needs no savepoint of its own. A context variable,
# not an argument, so that ``insert_rows(rows, alias)`` stays the one seam of every insert.
_without_savepoint: ContextVar[bool] = ContextVar("tasklog_insert_without_savepoint", default=False)


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database is away (not that it refused what was sent)."""
    return isinstance(error, UNREACHABLE_ERRORS)


@dataclass(frozen=True)
class RunStart:
    """What opening a run needs to know of it (``TaskCapture.run_start``)."""

    task_id: str
    token: str  # marks the TaskLog this run opened: a retried open changes nothing
    described: dict  # task_name, worker and origin fields
    attempt_marker: Callable[[int, bool], str]  # (attempt, previous unfinished) -> marker text


@dataclass(frozen=True)
class Position:
    """How far a run is stored: ``TaskLog.lines`` after its last write, and the relative seq
    (numbered from the run's start) that number stands for."""

    lines: int
    through_rel: int = 0

    def base(self) -> int:
        """What turns a relative seq of the run into the log's seq."""
        return self.lines - self.through_rel


@dataclass(frozen=True)
class Sent:
    """What storage must know of a flush that raised, since it may have committed."""

    token: str  # the TaskLog's flush_token if it did
    last_rel: int
    trimmed: int


@dataclass
class Batch:
    """What a flush takes from a capture: lines numbered relative to the capture's start."""

    lines: deque  # (rel_seq, unix_time, stream, level, message, logger, extra), ascending rel_seq
    lost: list  # [first_rel, last_rel] ranges dropped while the database was away
    last_rel: int  # highest relative seq assigned so far
    trimmed: int  # lines the cap discarded in memory before they reached the batch
    final: bool = False
    unconfirmed: Sent | None = None  # the previous flush, which raised: it may have committed
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def sent(self) -> Sent:
        return Sent(self.token, self.last_rel, self.trimmed)

    def without_stored(self, through_rel: int, trimmed: int) -> Batch:
        """This batch less what an earlier, committed flush stored (up to ``through_rel``)."""
        lines = self.lines
        while lines and lines[0][0] <= through_rel:
            lines.popleft()
        lost = [
            [max(first, through_rel + 1), last] for first, last in self.lost if last > through_rel
        ]
        return replace(self, lines=lines, lost=lost, trimmed=max(self.trimmed - trimmed, 0))


def open_run(run: RunStart, alias: str) -> Position:
    """Create the TaskLog, start the row recorded when the task was queued (attempt 1), or
    start a further attempt of a started one with a marker line naming it."""
    lines = TaskLog.objects.using(alias).open_run(
        run.task_id, run.token, run.described, run.attempt_marker
    )
    return Position(lines)


class NumbersTaken(Exception):
    """Another run of the task stored lines since this run's last flush."""


def store_batch(task_id: str, cap: Cap, position: Position, batch: Batch, alias: str) -> Position:
    """Number, cap and insert a batch, and update the TaskLog counters, in one transaction;
    returns how far the run is stored then.

    Optimistic first: the numbers follow what this run stored last, and the counter update
    checks that nothing else was stored meanwhile (saving a locking read per flush). If another
    run of the task (a retry racing its predecessor) did store lines, number after them under
    a row lock.
    """
    try:
        return _store_isolating_on_refusal(task_id, cap, position, batch, alias, locked=False)
    except NumbersTaken:
        return _store_isolating_on_refusal(task_id, cap, position, batch, alias, locked=True)


def _store_isolating_on_refusal(task_id, cap, position, batch, alias, *, locked) -> Position:
    """Insert the rows without a savepoint first (two round trips less a flush). After an
    error PostgreSQL takes no further statement in the transaction: a refused row rolls the
    whole flush back, and it is stored again with each try in a savepoint, refused rows
    isolated (``insert_isolating_refused``)."""
    try:
        return _store_in_one_transaction(
            task_id, cap, position, batch, alias, locked=locked, isolating=False
        )
    except REFUSED_VALUE_ERRORS:
        return _store_in_one_transaction(
            task_id, cap, position, batch, alias, locked=locked, isolating=True
        )


def _store_in_one_transaction(
    task_id, cap, position, batch, alias, *, locked, isolating
) -> Position:
    logs = TaskLog.objects.using(alias)
    with transaction.atomic(using=alias):
        if locked:
            stored_lines, flush_token = logs.locked_counter(task_id)
            position = Position(stored_lines, position.through_rel)
            unconfirmed = batch.unconfirmed
            if unconfirmed is not None and flush_token == unconfirmed.token:
                # The flush that "failed" had committed: its lines are stored, don't store
                # them twice.
                position = Position(stored_lines, unconfirmed.last_rel)
                batch = batch.without_stored(unconfirmed.last_rel, unconfirmed.trimmed)
        last_seq = position.base() + batch.last_rel
        kept = cap.kept_seqs(last_seq)
        if not logs.claim_numbers(
            task_id,
            position.lines,
            last_seq,
            batch.token,
            truncated=kept.head is not None,
            final=batch.final,
            # Live views wake on commit (tasklog.push); the claim carries the NOTIFY.
            returning=push.notification(task_id, alias),
        ):
            raise NumbersTaken
        dropped = batch.trimmed
        if kept.head is not None:
            dropped += TaskLogLine.objects.using(alias).delete_middle(task_id, cap.head, kept.start)
        rows, not_kept = batch_rows(task_id, cap, position.base(), kept, batch)
        if isolating:
            insert_isolating_refused(rows, alias)
        else:
            without_savepoint = _without_savepoint.set(True)
            try:
                insert_rows(rows, alias)
            finally:
                _without_savepoint.reset(without_savepoint)
        if dropped + not_kept:
            logs.count_dropped(task_id, dropped + not_kept)
        # The batch's transaction ends here: all of the above commits, or none of it.
    return Position(last_seq, batch.last_rel)


def batch_rows(task_id: str, cap: Cap, base: int, kept: KeptSeqs, batch: Batch) -> tuple[list, int]:
    """The rows (``LINE_COLUMNS``) of a batch in seq order, markers included, and how many of
    its lines the cap does not keep: the one place a batch's rows are built."""
    now = timezone.now()
    moment = datetime.fromtimestamp
    markers = []  # (seq, moment, stream, level, message, logger, extra)
    not_kept = 0
    if kept.head is None and not batch.lost:  # the usual batch: every line, nothing else
        return [
            (task_id, base + rel, moment(when, UTC), stream, level, message, logger_name, extra)
            for rel, when, stream, level, message, logger_name, extra in batch.lines
        ], 0
    if kept.head is None:
        lines = [
            (base + rel, moment(when, UTC), stream, level, message, logger_name, extra)
            for rel, when, stream, level, message, logger_name, extra in batch.lines
        ]
    else:
        markers.append(marker(*cap.middle_marker(kept.start), now))
        lines = []
        for rel, unix_time, *columns in batch.lines:
            seq = base + rel
            if seq in kept:
                lines.append((seq, moment(unix_time, UTC), *columns))
            else:
                not_kept += 1
    for first_rel, last_rel in batch.lost:
        first, last = base + first_rel, base + last_rel
        not_kept += last - first + 1
        marker_seq = kept.first_in(first, last)
        if marker_seq is not None:
            markers.append(marker(marker_seq, _lost_message(first, last), now))
    if markers:
        lines = sorted(lines + markers, key=lambda line: line[0])
    return [(task_id, *line) for line in lines], not_kept


def marker(seq: int, message: str, moment: datetime) -> tuple:
    """A line of stream ``marker`` (no level, no logger, no extra), without its task id."""
    return (seq, moment, Stream.MARKER, None, message, "", None)


def marker_row(task_id: str, seq: int, moment: datetime, message: str) -> tuple:
    return (task_id, *marker(seq, message, moment))


def _lost_message(first: int, last: int) -> str:
    return (
        f"{count_of_lines(last - first + 1)} lost while the database was unreachable or "
        f"slower than the task (seq {first} to {last}); the worker's own output has them."
    )


def insert_isolating_refused(rows: list, alias: str) -> None:
    """``insert_rows``, but a row the database refuses for its content never holds back the
    others: the rows are halved until each refused one is found, which is then replaced by a
    marker saying why. Connection errors propagate (retry later).

    ``insert_rows`` runs each try in its own savepoint, so a refusal leaves the flush's
    transaction usable; a second savepoint here would cost two more round trips a flush.
    """
    try:
        insert_rows(rows, alias)
        return
    except REFUSED_VALUE_ERRORS as error:
        if len(rows) == 1:
            _store_refused_row(rows[0], error, alias)
            return
    middle = len(rows) // 2
    insert_isolating_refused(rows[:middle], alias)
    insert_isolating_refused(rows[middle:], alias)


def _store_refused_row(row: tuple, error: BaseException, alias: str) -> None:
    """The known causes (levels, NUL, surrogates) are made safe before a line is queued
    (``TaskCapture.add_line``); a row refused all the same becomes a marker at its seq."""
    task_id, seq, moment = row[:3]
    refusal = clean_text(f"{type(error).__name__}: {error}".strip().splitlines()[0])
    refusal = refusal[:REFUSAL_TEXT_LENGTH]
    with bypass():
        logger.warning(
            "tasklog: the database refused line %s of task %s (%s)", seq, task_id, refusal
        )
    marker = f"Line {seq} not stored: the database refused it ({refusal})."
    insert_rows([marker_row(task_id, seq, moment, marker)], alias)


def insert_rows(rows: list, alias: str) -> None:
    """Insert line rows (``LINE_COLUMNS``) in one statement and its own savepoint: all of
    them or, when the database refuses one, none (see the queryset method). Without the
    savepoint while a flush tries its batch whole (``_store_isolating_on_refusal``)."""
    lines = TaskLogLine.objects.using(alias)
    lines.insert_rows(rows, LINE_COLUMNS, savepoint=not _without_savepoint.get())


def touch_run(task_id: str, alias: str) -> None:
    """Say the run is alive, so that a sweep does not take a quiet task for a dead one."""
    TaskLog.objects.using(alias).touch(task_id)
