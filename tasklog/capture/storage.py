"""Database writes of the capture: open a run, store a batch, close a run.

Every write of a batch happens in one short transaction that locks the task's ``TaskLog`` row,
so two runs under the same task id (a retry racing its predecessor's last flush) number their
lines one after the other and never collide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from django.db import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db.models import F
from django.utils import timezone

from .. import partitions, push
from ..models import Stream, TaskLog, TaskLogLine
from . import bulk
from .context import bypass, logger
from .lines import clean_text

LINE_COLUMNS = ("task_id", "seq", "timestamp", "stream", "level", "message", "logger", "extra")

# The database (or its driver, before sending) cannot reach the server: retry later, back off.
UNREACHABLE_ERRORS = (OperationalError, InterfaceError)
# The database (or its driver) refuses a value: retrying the same rows would fail forever.
REFUSED_VALUE_ERRORS = (DataError, IntegrityError, ValueError, TypeError, OverflowError)
REFUSAL_TEXT_LENGTH = 300


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database is away (not that it refused what was sent)."""
    return isinstance(error, UNREACHABLE_ERRORS)


@dataclass
class Batch:
    """What a flush takes from a capture: lines numbered relative to the capture's start."""

    lines: list  # (rel_seq, unix_time, stream, level, message, logger, extra), ascending rel_seq
    lost: list  # [first_rel, last_rel] ranges dropped while the database was away
    last_rel: int  # highest relative seq assigned so far
    trimmed: int  # lines the cap discarded in memory before they reached the batch
    final: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def without_stored(self, through_rel: int, trimmed: int) -> Batch:
        """This batch less what an earlier, committed flush stored (up to ``through_rel``)."""
        lines = self.lines
        while lines and lines[0][0] <= through_rel:
            lines.popleft()
        lost = [
            [max(first, through_rel + 1), last] for first, last in self.lost if last > through_rel
        ]
        return replace(self, lines=lines, lost=lost, trimmed=max(self.trimmed - trimmed, 0))


def _moment(unix_time: float) -> datetime:
    return datetime.fromtimestamp(unix_time, tz=UTC)


def fitted(values: dict) -> dict:
    """``TaskLog`` field values cut to their columns' lengths: a long worker name or origin
    must not make the database refuse the run."""
    fields = {name: TaskLog._meta.get_field(name) for name in values}
    return {
        name: value[: fields[name].max_length]
        if isinstance(value, str) and fields[name].max_length
        else value
        for name, value in values.items()
    }


def open_run(capture, alias: str) -> None:
    """Create the TaskLog, start the row recorded when the task was queued (attempt 1), or
    start a further attempt of a started one with a marker line naming it."""
    now = timezone.now()
    described = fitted({"task_name": capture.task_name, "worker": capture.worker, **capture.origin})
    with transaction.atomic(using=alias):
        log, created = (
            TaskLog.objects.using(alias)
            .select_for_update()
            .get_or_create(
                task_id=capture.task_id,
                defaults={
                    "started": now,
                    "last_seen": now,
                    "flush_token": capture.run_token,
                    **described,
                },
            )
        )
        if not created and log.started is None:  # queued: this is its first start, attempt 1
            log.started = log.last_seen = now
            log.finished = None
            log.interrupted = False
            log.flush_token = capture.run_token
            for name, value in described.items():
                setattr(log, name, value or getattr(log, name))
            log.save()
        elif not created and log.flush_token != capture.run_token:  # else: our own retried open
            previous_unfinished = log.finished is None
            log.attempts += 1
            log.finished = None
            log.interrupted = False
            log.last_seen = now
            log.worker = described.pop("worker") or log.worker
            for name, value in described.items():
                setattr(log, name, getattr(log, name) or value)
            log.lines += 1
            log.flush_token = capture.run_token
            TaskLogLine.objects.using(alias).create(
                task_id=capture.task_id,
                seq=log.lines,
                timestamp=now,
                stream=Stream.MARKER,
                message=capture.attempt_marker(log.attempts, previous_unfinished),
            )
            log.save()
    capture.opened(log)


class NumbersTaken(Exception):
    """Another run of the task stored lines since this run's last flush."""


def store_batch(capture, batch: Batch, alias: str) -> None:
    """Number, cap and insert a batch, and update the TaskLog counters, in one transaction.

    Optimistic first: the numbers follow what this run stored last, and the counter update
    checks that nothing else was stored meanwhile (saving a locking read per flush). If another
    run of the task (a retry racing its predecessor) did store lines, number after them under
    a row lock.
    """
    if capture.stored_lines is not None:
        try:
            with transaction.atomic(using=alias):
                _write_batch(capture, batch, alias, capture.stored_lines)
            return
        except NumbersTaken:
            pass
    with transaction.atomic(using=alias):
        stored_lines, flush_token = (
            TaskLog.objects.using(alias)
            .select_for_update()
            .values_list("lines", "flush_token")
            .get(task_id=capture.task_id)
        )
        unconfirmed = capture.unconfirmed
        if unconfirmed is not None and flush_token == unconfirmed.token:
            # The flush that "failed" had committed: its lines are stored, don't store them twice.
            capture.flushed_rel = unconfirmed.last_rel
            batch = batch.without_stored(unconfirmed.last_rel, unconfirmed.trimmed)
        _write_batch(capture, batch, alias, stored_lines)


def _write_batch(capture, batch: Batch, alias: str, stored_lines: int) -> None:
    base = stored_lines - capture.flushed_rel
    last_seq = base + batch.last_rel
    kept = capture.cap.kept_seqs(last_seq)
    _claim_numbers(capture, batch, alias, stored_lines, last_seq, truncated=kept.head is not None)
    dropped = batch.trimmed
    rows = []
    if kept.head is not None:
        dropped += _drop_middle(capture.task_id, capture.cap, kept.start, alias, rows)
        for rel, unix_time, *columns in batch.lines:
            seq = base + rel
            if seq in kept:
                rows.append((capture.task_id, seq, _moment(unix_time), *columns))
            else:
                dropped += 1
    else:
        rows += _line_rows(capture.task_id, base, batch.lines)
    for first_rel, last_rel in batch.lost:
        first, last = base + first_rel, base + last_rel
        dropped += last - first + 1
        marker_seq = kept.first_in(first, last)
        if marker_seq is not None:
            rows.append(_lost_marker(capture.task_id, marker_seq, first, last))
    rows.sort(key=lambda row: row[1])
    insert_isolating_refused(rows, alias)
    push.notify(capture.task_id, alias)  # delivered on commit: live views wake (tasklog.push)
    if dropped:
        TaskLog.objects.using(alias).filter(task_id=capture.task_id).update(
            dropped=F("dropped") + dropped
        )
    capture.flushed_rel = batch.last_rel
    capture.stored_lines = last_seq


def _claim_numbers(capture, batch, alias, stored_lines, last_seq, *, truncated: bool) -> None:
    """Move TaskLog.lines on to ``last_seq`` if it still is ``stored_lines``; the row stays
    locked until the transaction ends, so the numbers in between are this batch's."""
    changes = {"lines": last_seq, "last_seen": timezone.now(), "flush_token": batch.token}
    if truncated:
        changes["truncated"] = True
    if batch.final:
        changes["finished"] = changes["last_seen"]
    claimed = (
        TaskLog.objects.using(alias)
        .filter(task_id=capture.task_id, lines=stored_lines)
        .update(**changes)
    )
    if not claimed:
        raise NumbersTaken


def _line_rows(task_id: str, base: int, lines) -> list[tuple]:
    """Rows of lines that are all kept: the per-line work of a flush, kept to a minimum."""
    moment = datetime.fromtimestamp
    return [
        (task_id, base + rel, moment(unix_time, UTC), stream, level, message, logger_name, extra)
        for rel, unix_time, stream, level, message, logger_name, extra in lines
    ]


def _drop_middle(task_id: str, cap, window_start: int, alias: str, rows: list) -> int:
    """Delete stored lines that fell out of the tail window and (re)write the cap marker.

    Returns how many task lines (not markers) the delete removed.
    """
    middle = (
        TaskLogLine.objects.using(alias)
        .for_task(task_id)
        .filter(seq__gt=cap.head, seq__lt=window_start)
    )
    deleted_lines = middle.exclude(stream=Stream.MARKER).delete()[0]
    middle.delete()
    first, last = cap.head + 1, window_start - 1
    message = (
        f"{_lines(last - first + 1)} not stored (seq {first} to {last}): "
        f"CELERY_TASKLOG_MAX_LINES={cap.max_lines} keeps the first {cap.head} "
        f"and the last {cap.tail}."
    )
    rows.append(marker_row(task_id, first, timezone.now(), message))
    return deleted_lines


def _lines(count: int) -> str:
    return f"{count:,} line" if count == 1 else f"{count:,} lines"


def _lost_marker(task_id: str, seq: int, first: int, last: int) -> tuple:
    message = (
        f"{_lines(last - first + 1)} lost while the database was unreachable or slower than "
        f"the task (seq {first} to {last}); the worker's own output has them."
    )
    return marker_row(task_id, seq, timezone.now(), message)


def marker_row(task_id: str, seq: int, moment: datetime, message: str) -> tuple:
    """A row of stream ``marker``: no level, no logger, no extra."""
    return (task_id, seq, moment, Stream.MARKER, None, message, "", None)


def insert_isolating_refused(rows: list, alias: str) -> None:
    """``insert_rows``, but a row the database refuses for its content never holds back the
    others: the rows are halved until each refused one is found, which is then replaced by a
    marker saying why. Connection errors propagate (retry later).

    Each try runs in a savepoint, so a refusal leaves the flush's transaction usable.
    """
    try:
        with transaction.atomic(using=alias):
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
    with transaction.atomic(using=alias):
        insert_rows([marker_row(task_id, seq, moment, marker)], alias)


def insert_rows(rows: list, alias: str) -> None:
    """COPY on PostgreSQL with psycopg 3 (the fastest ingest), the driver's ``executemany`` on
    SQLite and MySQL (``bulk``), ``bulk_create`` elsewhere."""
    if not rows:
        return
    connection = connections[alias]
    if connection.vendor in bulk.INSERTS:
        return bulk.INSERTS[connection.vendor](connection, rows)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if hasattr(raw, "copy"):
                try:
                    with transaction.atomic(using=alias), connection.wrap_database_errors:
                        _copy_rows(raw, connection, rows)
                    return
                except IntegrityError:
                    pass  # a row is stored already (a retried flush): insert the rest below.
    TaskLogLine.objects.using(alias).bulk_create(
        [TaskLogLine(**dict(zip(LINE_COLUMNS, row, strict=True))) for row in rows],
        batch_size=2000,
        ignore_conflicts=True,
    )


def _copy_rows(raw_cursor, connection, rows: list) -> None:
    """One binary COPY: psycopg turns datetimes into binary far faster than into text, and the
    server has no text to parse. Binary needs each column's exact type: the model's, per field.
    A partitioned table's rows also get their task's partition key (``tasklog.partitions``)."""
    names, rows = partitions.keyed(connection.alias, LINE_COLUMNS, rows)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in names)
    table = quote(TaskLogLine._meta.db_table)
    with raw_cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_column_types(connection, names))
        for row in rows:
            copy.write_row(row)


def _column_types(connection, names) -> list[str]:
    """``varchar``, ``integer``, ...: the database types of the line columns, without sizes."""
    fields = [TaskLogLine._meta.get_field(column) for column in names]
    return [field.db_type(connection).split("(")[0] for field in fields]


def touch_run(task_id: str, alias: str) -> None:
    """Say the run is alive, so that a sweep does not take a quiet task for a dead one."""
    TaskLog.objects.using(alias).filter(task_id=task_id, finished__isnull=True).update(
        last_seen=timezone.now()
    )
