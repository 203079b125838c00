"""Querysets that own every query on the log tables, always on ``CELERY_TASKLOG_DATABASE``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections, models, transaction
from django.db.models import F, sql
from django.utils import timezone

from .conf import settings
from .sections import ATTEMPT_PREFIX, GROUP_END, GROUP_START

SECTION_LINES = (
    models.Q(message__startswith=GROUP_START)
    | models.Q(message__startswith=GROUP_END)
    | models.Q(stream="marker", message__startswith=ATTEMPT_PREFIX)
)
"""The lines that may open or close a section; the condition of a partial index."""


LOOK_UP = object()
"""``for_task``'s default: the caller has not read the task's log row."""


class LogDatabaseQuerySet(models.QuerySet):
    """Reads and writes go to the configured log database unless ``using()`` says otherwise."""

    def __init__(self, model=None, query=None, using=None, hints=None):
        super().__init__(model=model, query=query, using=using, hints=hints)
        if using is None:
            self._db = settings.DATABASE


class TaskLogQuerySet(LogDatabaseQuerySet):
    def find(self, task_id: str):
        """The log of ``task_id``, or None: one lookup by the unique task id."""
        return self.filter(task_id=task_id).first()

    def running(self):
        return self.filter(started__isnull=False, finished__isnull=True, interrupted=False)

    def queued(self):
        """Published and not started (nor closed): waiting for a worker."""
        return self.filter(started__isnull=True, finished__isnull=True)

    def never_started(self, seconds: int, now: datetime | None = None):
        """Queued for more than ``seconds``: no worker took the task (lost queue, purged)."""
        return self.queued().filter(queued__lt=(now or timezone.now()) - timedelta(seconds=seconds))

    def finished(self):
        return self.filter(finished__isnull=False)

    def expired(self, days: int, now: datetime | None = None):
        """Logs in which nothing was written for ``days`` days."""
        return self.filter(last_seen__lt=(now or timezone.now()) - timedelta(days=days))

    def stale(self, seconds: int, now: datetime | None = None):
        """Running logs whose worker has been silent for ``seconds``: it most likely died."""
        return self.running().filter(
            last_seen__lt=(now or timezone.now()) - timedelta(seconds=seconds)
        )

    def for_tasks(self, task_ids: Iterable[str]):
        return self.filter(task_id__in=list(task_ids))

    def first_recorded_between(self, start: date, end: date):
        """Logs first recorded (queued, else started) from UTC day ``start`` to before ``end``:
        those whose lines a partition of the lines table holds (``tasklog.partitions``)."""
        from .partitions import first_day

        return self.alias(first_day=first_day()).filter(first_day__gte=start, first_day__lt=end)

    def mark_interrupted(self, now: datetime | None = None) -> int:
        """Close these runs as interrupted (their worker died), each with a marker line saying
        so; returns how many were closed."""

        def explain(log) -> str:
            return (
                f"Interrupted: nothing heard from the worker since "
                f"{log.last_seen:%Y-%m-%d %H:%M:%S} UTC; it stopped while the task ran."
            )

        return self.close_with_marker(explain, interrupted=True, now=now)

    def mark_never_started(self, now: datetime | None = None) -> int:
        """Close these queued tasks as interrupted: no worker took them (a lost or purged
        queue, no worker for it); each gets a marker line saying so."""

        def explain(log) -> str:
            return (
                f"Never started: waiting in queue {log.queue or '?'} since "
                f"{log.queued:%Y-%m-%d %H:%M:%S} UTC, no worker took the task."
            )

        return self.close_with_marker(explain, interrupted=True, now=now)

    def close_with_marker(
        self,
        explain: Callable[[Any], str],
        *,
        interrupted: bool = False,
        now: datetime | None = None,
        batch_size: int = 1000,
    ) -> int:
        """End these runs with a marker line ``explain(log)`` at each log's next seq.

        Each batch is one short transaction that locks its rows, so a worker flushing at the
        same moment numbers its lines after the marker. A run that already finished keeps its
        end time; ``last_seen`` stays the last sign of life from the worker. Returns how many
        logs got a marker.
        """
        from .models import Stream, TaskLogLine

        now = now or timezone.now()
        closed = last_pk = 0
        while True:
            with transaction.atomic(using=self.db):
                logs = list(
                    self.filter(pk__gt=last_pk).order_by("pk").select_for_update()[:batch_size]
                )
                if not logs:
                    return closed
                markers = []
                for log in logs:
                    message = explain(log)
                    log.lines += 1
                    log.finished = log.finished or now
                    log.interrupted = log.interrupted or interrupted
                    markers.append(
                        TaskLogLine(
                            task_id=log.task_id,
                            seq=log.lines,
                            timestamp=now,
                            stream=Stream.MARKER,
                            message=message,
                        )
                    )
                TaskLogLine.objects.using(self.db).bulk_create(markers)
                self.model.objects.using(self.db).bulk_update(
                    logs, ["lines", "finished", "interrupted"]
                )
            closed += len(logs)
            last_pk = logs[-1].pk

    def fitted(self, values: dict) -> dict:
        """``TaskLog`` field values cut to their columns' lengths: a long worker name or origin
        must not make the database refuse the run."""
        fields = {name: self.model._meta.get_field(name) for name in values}
        return {
            name: value[: fields[name].max_length]
            if isinstance(value, str) and fields[name].max_length
            else value
            for name, value in values.items()
        }

    def open_run(
        self,
        task_id: str,
        token: str,
        described: dict,
        attempt_marker: Callable[[int, bool], str],
    ) -> int:
        """Create the log of ``task_id``, start the row recorded when it was queued (attempt 1),
        or start a further attempt of a started one with the marker line
        ``attempt_marker(attempt, previous_unfinished)``. ``token`` marks the run: opening again
        with the same token (a retried open that had committed) changes nothing. Returns the
        log's ``lines`` once opened."""
        from .models import Stream, TaskLogLine

        now = timezone.now()
        described = self.fitted(described)
        with transaction.atomic(using=self.db):
            log, created = self.select_for_update().get_or_create(
                task_id=task_id,
                defaults={"started": now, "last_seen": now, "flush_token": token, **described},
            )
            if not created and log.started is None:  # queued: this is its first start, attempt 1
                log.started = log.last_seen = now
                log.finished = None
                log.interrupted = False
                log.flush_token = token
                for name, value in described.items():
                    setattr(log, name, value or getattr(log, name))
                log.save()
            elif not created and log.flush_token != token:  # else: our own retried open
                previous_unfinished = log.finished is None
                log.attempts += 1
                log.finished = None
                log.interrupted = False
                log.last_seen = now
                log.worker = described.pop("worker", "") or log.worker
                for name, value in described.items():
                    setattr(log, name, getattr(log, name) or value)
                log.lines += 1
                log.flush_token = token
                TaskLogLine.objects.using(self.db).create(
                    task_id=task_id,
                    seq=log.lines,
                    timestamp=now,
                    stream=Stream.MARKER,
                    message=attempt_marker(log.attempts, previous_unfinished),
                )
                log.save()
        return log.lines

    def locked_counter(self, task_id: str) -> tuple[int, str]:
        """``(lines, flush_token)`` of the log, its row locked until the transaction ends."""
        return self.select_for_update().values_list("lines", "flush_token").get(task_id=task_id)

    def claim_numbers(
        self,
        task_id: str,
        stored_lines: int,
        last_seq: int,
        token: str,
        *,
        truncated: bool,
        final: bool,
        returning: tuple[str, list] | None = None,
    ) -> bool:
        """Move ``lines`` on to ``last_seq`` if it still is ``stored_lines``; the row stays
        locked until the transaction ends, so the numbers in between are the caller's.
        False when another writer moved it first.

        ``returning`` (an SQL expression and its parameters, PostgreSQL: e.g. the flush's
        ``pg_notify``) is evaluated by the same statement, for the claimed row only."""
        changes = {"lines": last_seq, "last_seen": timezone.now(), "flush_token": token}
        if truncated:
            changes["truncated"] = True
        if final:
            changes["finished"] = changes["last_seen"]
        claimed = self.filter(task_id=task_id, lines=stored_lines)
        if returning is None:
            return bool(claimed.update(**changes))
        query = claimed.query.chain(sql.UpdateQuery)
        query.add_update_values(changes)
        statement, params = query.get_compiler(self.db).as_sql()
        expression, returning_params = returning
        with connections[self.db].cursor() as cursor:
            cursor.execute(f"{statement} RETURNING {expression}", [*params, *returning_params])
            return cursor.rowcount > 0

    def count_dropped(self, task_id: str, count: int) -> None:
        self.filter(task_id=task_id).update(dropped=F("dropped") + count)

    def touch(self, task_id: str) -> None:
        """Say the run is alive, so that a sweep does not take a quiet task for a dead one."""
        self.filter(task_id=task_id, finished__isnull=True).update(last_seen=timezone.now())

    def count_with_lines(self) -> tuple[int, int]:
        """``(logs, lines)`` that ``delete_with_lines`` would delete, counted in the database."""
        from .models import TaskLogLine

        lines = TaskLogLine.objects.using(self.db).filter(task_id__in=self.values("task_id"))
        return self.count(), lines.count()

    def delete_with_lines(self, batch_size: int = 10_000) -> tuple[int, int]:
        """Delete these logs and their lines in short transactions of at most ``batch_size`` rows,
        and the archived objects of those archived (``tasklog.archive``).

        Returns ``(logs, lines)`` deleted. Memory stays bounded: ids are fetched a batch at a time.
        """
        from .archive import delete_objects
        from .models import TaskLogLine

        logs_deleted = lines_deleted = 0
        queryset = self.order_by("pk")
        while True:
            batch = list(queryset.values_list("pk", "task_id", "archive_name")[:batch_size])
            if not batch:
                return logs_deleted, lines_deleted
            # An archived log's object goes first: should that fail, its row still names it.
            delete_objects([name for _pk, _task_id, name in batch if name])
            task_ids = [task_id for _pk, task_id, _name in batch]
            lines_deleted += (
                TaskLogLine.objects.using(self.db)
                .filter(task_id__in=task_ids)
                .delete_in_batches(batch_size)
            )
            with transaction.atomic(using=self.db):
                logs_deleted += (
                    self.model.objects.using(self.db)
                    .filter(pk__in=[pk for pk, _task_id, _name in batch])
                    .delete()[0]
                )


class TaskLogLineQuerySet(LogDatabaseQuerySet):
    def create(self, **kwargs):
        """``create``, with the partition key of a partitioned table (``tasklog.partitions``)."""
        from .partitions import fill_task_days

        line = self.model(**kwargs)
        fill_task_days(self.db, [line])
        line.save(force_insert=True, using=self.db)
        return line

    def bulk_create(self, objs, *args, **kwargs):
        """``bulk_create``, with the partition key of a partitioned table."""
        from .partitions import fill_task_days

        objs = list(objs)
        fill_task_days(self.db, objs)
        return super().bulk_create(objs, *args, **kwargs)

    def for_task(self, task_id: str, *, log: Any = LOOK_UP):
        """The lines of ``task_id``: from the database, or from its archive once archived
        (``tasklog.archive.ArchivedLines``, with the same reading methods).

        ``log``: the task's ``TaskLog`` (or None) when the caller has it, saving a query.
        """
        from .archive import ArchivedLines
        from .models import TaskLog

        if log is LOOK_UP:
            logs = TaskLog.objects.using(self.db).filter(task_id=task_id)
            archive_name = logs.values_list("archive_name", flat=True).first()
        else:
            archive_name = log.archive_name if log is not None else ""
        if archive_name:
            return ArchivedLines(task_id, archive_name, self.db)
        return self.filter(task_id=task_id).in_partition_of(task_id)

    def in_partition_of(self, task_id: str):
        """Only the partition that holds the task's lines, when the table is partitioned.

        The key is read from the task's log when the queryset is built (one indexed lookup),
        and named as a constant: PostgreSQL then plans the query on that one partition, as on
        a plain table, instead of opening and planning every partition (1.5 ms a query, and
        some 30 ms on a new connection, with 45 of them)."""
        from .partitions import reads_partitions, task_days

        if not reads_partitions(self.db):
            return self
        day = task_days(self.db, [task_id]).get(task_id)
        return self if day is None else self.filter(task_day=day)

    def after(self, seq: int):
        return self.filter(seq__gt=seq)

    def before(self, seq: int):
        return self.filter(seq__lt=seq)

    def in_streams(self, *streams: str):
        return self.filter(stream__in=streams) if streams else self

    def since(self, moment: datetime):
        return self.filter(timestamp__gte=moment)

    def containing(self, text: str):
        return self.filter(message__contains=text) if text else self

    def matching(self, text: str, *, regex: bool = False):
        """Lines whose message holds ``text`` (any case), or matches the pattern ``text``.

        Check the pattern first (``search.check_pattern``) and evaluate the result inside
        ``search.time_limit``: this only builds the query.
        """
        return self.filter(self._search_condition(text, regex)) if text else self

    def _search_condition(self, text: str, regex: bool) -> models.Q:
        if not regex:
            return models.Q(message__icontains=text)
        from .search import in_dialect

        return models.Q(message__regex=in_dialect(text, connections[self.db].vendor))

    def marking(self, text: str, *, regex: bool = False):
        """Each line with ``match``: whether ``matching(text, regex=regex)`` would keep it."""
        if not text:
            return self
        condition = self._search_condition(text, regex)
        return self.annotate(
            match=models.ExpressionWrapper(condition, output_field=models.BooleanField())
        )

    def at_least(self, level: int | None):
        """Logging records at ``level`` or above (lines without a level are not records)."""
        return self if level is None else self.filter(level__gte=level)

    def from_logger(self, name: str):
        """Records of the logger ``name`` and of its children (``name.*``)."""
        if not name:
            return self
        return self.filter(models.Q(logger=name) | models.Q(logger__startswith=f"{name}."))

    def chosen_by(self, line_filter):
        """The lines a ``search.LineFilter`` keeps: every filter and the search combined."""
        return (
            self.in_streams(*line_filter.streams)
            .at_least(line_filter.level)
            .from_logger(line_filter.logger)
            .matching(line_filter.text, regex=line_filter.regex)
        )

    def errors(self):
        """Lines that open the group they are in: stderr, and records at ERROR or above."""
        return self.filter(models.Q(stream="stderr") | models.Q(level__gte=logging.ERROR))

    def sections(self):
        """Lines that open or close a section (``tasklog.sections``): a group's first or last
        line, or a retry's attempt marker. The partial index ``tasklog_line_section_idx``
        holds just these, so finding them costs nothing like reading the log."""
        return self.filter(SECTION_LINES)

    def count_up_to(self, limit: int) -> tuple[int, bool]:
        """``(count, exact)``: the exact count up to ``limit``, else ``(limit, False)``.

        Counting stops at ``limit + 1`` rows, so a common word in a huge log costs no more
        than reading ``limit`` rows of it.
        """
        found = self.order_by()[: limit + 1].count()
        return min(found, limit), found <= limit

    def around(self, seq: int, context: int) -> list:
        """The line ``seq`` (or where it would be) with ``context`` lines on each side."""
        return self.before(seq + 1).tail(context + 1) + self.after(seq).head(context)

    def head(self, count: int) -> list:
        return list(self.order_by("seq")[:count])

    def pages(self, after: int = 0, page_size: int = 1000) -> Iterator[list]:
        """These lines with seq above ``after`` in seq order, as lists of ``page_size``.

        The one way every reader pages through a log (download, commands, SSE, follow): keyset
        pages through the (task_id, seq) index, so memory stays flat whatever the log's size.
        """
        while page := self.after(after).head(page_size):
            yield page
            after = page[-1].seq

    def seq_from_end(self, count: int) -> int | None:
        """The seq of the ``count``-th line from the end (1: the last), None when fewer."""
        seqs = self.order_by("-seq").values_list("seq", flat=True)[count - 1 : count]
        return seqs[0] if seqs else None

    def section_rows(self) -> Iterator[tuple[int, str, str, datetime]]:
        """``(seq, stream, message, timestamp)`` of the lines that open or close a section."""
        return (
            self.sections()
            .order_by("seq")
            .values_list("seq", "stream", "message", "timestamp")
            .iterator(chunk_size=2000)
        )

    def tail(self, count: int) -> list:
        """The last ``count`` lines in ascending order, read backwards through the index."""
        return list(reversed(self.order_by("-seq")[:count]))

    def delete_in_seq_ranges(self, batch_size: int = 10_000) -> int:
        """Delete these lines (one task's) by ranges of ``batch_size`` seqs, each range one
        short statement through the (task_id, seq) index: no ids are fetched first."""
        last = self.seq_from_end(1) or 0
        deleted = 0
        for start in range(0, last, batch_size):
            lines = self.order_by().filter(seq__gt=start, seq__lte=start + batch_size)
            with transaction.atomic(using=self.db):
                deleted += lines.delete()[0]
        return deleted

    def delete_middle(self, task_id: str, head: int, window_start: int) -> int:
        """Delete the lines of ``task_id`` after ``head`` and before ``window_start`` (what a
        line cap no longer keeps); returns how many task lines (not markers) went."""
        from .models import Stream

        middle = self.for_task(task_id).filter(seq__gt=head, seq__lt=window_start)
        deleted_lines = middle.exclude(stream=Stream.MARKER).delete()[0]
        middle.delete()
        return deleted_lines

    def insert_rows(self, rows: list, columns: tuple[str, ...], *, savepoint: bool = True) -> None:
        """Insert line rows (tuples in ``columns`` order) in one statement: a binary COPY on
        PostgreSQL with psycopg 3 (the fastest ingest), the driver's ``executemany`` on SQLite
        and MySQL (``capture.bulk``), ``bulk_create`` elsewhere. A row stored already (a
        retried flush) is skipped.

        Each way runs in its own savepoint: when the database refuses a row, nothing of the
        statement is stored and the caller's transaction goes on (``storage`` relies on it to
        isolate the refused row without a savepoint of its own). ``savepoint=False`` saves
        two round trips on PostgreSQL for a caller that rolls back on any error: the COPY
        runs bare, and a row stored already is an ``IntegrityError`` for it to handle."""
        from .capture import bulk

        if not rows:
            return
        connection = connections[self.db]
        if connection.vendor in bulk.INSERTS:
            return bulk.INSERTS[connection.vendor](connection, rows)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                raw = cursor.cursor
                if hasattr(raw, "copy"):
                    if not savepoint:
                        with connection.wrap_database_errors:
                            self._copy_rows(raw, connection, rows, columns)
                        return
                    try:
                        with transaction.atomic(using=self.db), connection.wrap_database_errors:
                            self._copy_rows(raw, connection, rows, columns)
                        return
                    except IntegrityError:
                        pass  # a row is stored already (a retried flush): insert the rest below.
        with transaction.atomic(using=self.db):
            self.bulk_create(
                [self.model(**dict(zip(columns, row, strict=True))) for row in rows],
                batch_size=2000,
                ignore_conflicts=True,
            )

    def _copy_rows(self, raw_cursor, connection, rows: list, columns: tuple[str, ...]) -> None:
        """One binary COPY: psycopg turns datetimes into binary far faster than into text, and
        the server has no text to parse. Binary needs each column's exact type: the model's.
        A partitioned table's rows also get their task's partition key (``tasklog.partitions``)."""
        from .partitions import keyed

        columns, rows = keyed(self.db, columns, rows)
        quote = connection.ops.quote_name
        fields = [self.model._meta.get_field(column) for column in columns]
        names = ", ".join(quote(field.column) for field in fields)
        table = quote(self.model._meta.db_table)
        with raw_cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([field.db_type(connection).split("(")[0] for field in fields])
            for row in rows:
                copy.write_row(row)

    def delete_in_batches(self, batch_size: int = 10_000) -> int:
        """Delete these lines ``batch_size`` at a time, each batch in its own transaction.

        In a partitioned table each batch also names its partition keys, so that its delete
        looks up its ids in those partitions only, not in every one."""
        from .partitions import KEY_COLUMN, reads_partitions

        columns = ("pk", KEY_COLUMN) if reads_partitions(self.db) else ("pk",)
        deleted = 0
        queryset = self.order_by()
        while True:
            rows = list(queryset.values_list(*columns)[:batch_size])
            if not rows:
                return deleted
            batch = self.model.objects.using(self.db).filter(pk__in=[row[0] for row in rows])
            if len(columns) > 1:
                batch = batch.filter(task_day__in={row[1] for row in rows})
            with transaction.atomic(using=self.db):
                deleted += batch.delete()[0]
