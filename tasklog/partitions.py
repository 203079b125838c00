"""The lines table partitioned by day or week on PostgreSQL (``CELERY_TASKLOG_PARTITIONS``).

Every line carries ``task_day``: the UTC day its task was first recorded (queued, else started),
read from the ``TaskLog`` row in the transaction that numbers the lines. That day never changes
for a task id, so all lines of a task live in one partition, whether the task runs across
midnight, retries days later or waits days in its queue; and the unique index on
``(task_id, seq, task_day)`` keeps ``(task_id, seq)`` unique. A ``DEFAULT`` partition takes a
line whose partition is missing, so an insert never fails; creating that partition later moves
such lines into it.

Retention drops a whole partition once its period ended before the cutoff and every log in it
has expired (``droppable``); logs kept back by a live one are deleted row by row as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from .archive import ArchiveError, delete_objects
from .conf import settings

PERIODS = ("day", "week")
KEY_COLUMN = "task_day"
KEY_SETTING = "tasklog.task_day"
KEY_DEFAULT = f"current_setting('{KEY_SETTING}', true)::date"
"""The key column's default in a partitioned table: the key a flush names (see ``keyed``)."""
AHEAD = 3
"""Periods created ahead of the current one, so that a day's first line finds its partition."""
DDL_LOCK_TIMEOUT = "5s"
"""Longest wait of a partition DDL for its lock; past it the DDL gives up, writers go on."""
FIRST_USE_LOCK_TIMEOUT = "100ms"
"""A flush that finds its partition missing waits no longer than this to create it."""

TASK_DAY_SQL = "((COALESCE(queued, started, last_seen) AT TIME ZONE 'UTC')::date)"
"""The partition key of a task, from its ``TaskLog`` row: the day it was first recorded."""


def first_day():
    """``TASK_DAY_SQL`` as an expression on ``TaskLog`` querysets."""
    from django.db.models import DateField
    from django.db.models.expressions import RawSQL

    return RawSQL(TASK_DAY_SQL, [], output_field=DateField())


_BOUNDS = re.compile(r"FROM \('(\d{4}-\d{2}-\d{2})'\) TO \('(\d{4}-\d{2}-\d{2})'\)")
_converted: dict[str, bool] = {}
"""Whether the lines table of an alias is partitioned, as this process first saw it."""
_created_here: set[tuple[str, date]] = set()
"""Partitions this process knows exist (alias, start): a flush checks the others once. Only a
conversion (after which processes restart) or the drop of an expired partition, whose logs go
with it, can remove one; both forget what this process knew."""


@dataclass(frozen=True)
class Partition:
    name: str
    start: date
    end: date  # exclusive


def lines_table() -> str:
    from .models import TaskLogLine

    return TaskLogLine._meta.db_table


def logs_table() -> str:
    from .models import TaskLog

    return TaskLog._meta.db_table


def period_start(day: date, period: str) -> date:
    """The first day of the period holding ``day`` (a week starts on Monday)."""
    return day - timedelta(days=day.weekday()) if period == "week" else day


def period_end(start: date, period: str) -> date:
    return start + timedelta(days=7 if period == "week" else 1)


def partition_name(start: date, period: str) -> str:
    return f"{lines_table()}_{period[0]}{start:%Y%m%d}"


def default_name() -> str:
    return f"{lines_table()}_default"


def uses_partitions(alias: str) -> bool:
    """Whether lines written to ``alias`` carry the partition key (the setting is on)."""
    return settings.PARTITIONS is not None and connections[alias].vendor == "postgresql"


def reads_partitions(alias: str) -> bool:
    """Whether reads of ``alias`` may name the partition key: the setting is on and the table
    converted (before it is, older lines have no key). Asked once per process."""
    if not uses_partitions(alias):
        return False
    if alias not in _converted:
        _converted[alias] = is_partitioned(alias)
    return _converted[alias]


def is_partitioned(alias: str) -> bool:
    """Whether the lines table of ``alias`` is a partitioned table (``--convert`` was run)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [lines_table()])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions(alias: str) -> list[Partition]:
    """The dated partitions of the lines table, oldest first (not the default one)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT child.relname, pg_get_expr(child.relpartbound, child.oid) "
            "FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = to_regclass(%s)",
            [lines_table()],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUNDS.search(bound or "")
        if match:
            start, end = (date.fromisoformat(text) for text in match.groups())
            found.append(Partition(name, start, end))
    return sorted(found, key=lambda partition: partition.start)


def partitioned_by(alias: str) -> str | None:
    """``day`` or ``week``: the period of the existing partitions, None when there is none."""
    existing = partitions(alias)
    if not existing:
        return None
    return "week" if (existing[0].end - existing[0].start).days == 7 else "day"


def task_days(alias: str, task_ids: Iterable[str]) -> dict[str, date]:
    """Each task's partition key, from its ``TaskLog`` row (read in the caller's transaction)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT task_id, {TASK_DAY_SQL} FROM {logs_table()} WHERE task_id = ANY(%s)",
            [list(set(task_ids))],
        )
        return dict(cursor.fetchall())


def keyed(alias: str, columns: Sequence[str], rows: list) -> tuple[Sequence[str], list]:
    """``columns`` and ``rows`` (``task_id`` first) as they must be copied, partitions on.

    The rows of one task (a flush's) stay as they are: the flush's transaction names their key
    in ``tasklog.task_day``, which the key column's default reads, so no row is rebuilt. Rows
    of several tasks, or a table this process has not seen converted, get the key added.
    """
    if not uses_partitions(alias) or not rows:
        return columns, rows
    task_ids = {row[0] for row in rows}
    if len(task_ids) == 1 and reads_partitions(alias):
        ensure_on_first_use(alias, _name_task_day(alias, *task_ids))
        return columns, rows
    days = task_days(alias, task_ids)
    today = timezone.now().date()
    for day in set(days.values()):
        ensure_on_first_use(alias, day)
    return (*columns, KEY_COLUMN), [(*row, days.get(row[0], today)) for row in rows]


def _name_task_day(alias: str, task_id: str) -> date:
    """Set ``tasklog.task_day`` to the task's key for the rest of the transaction."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT set_config('{KEY_SETTING}', COALESCE((SELECT {TASK_DAY_SQL} FROM "
            f"{logs_table()} WHERE task_id = %s), (now() AT TIME ZONE 'UTC')::date)::text, true)",
            [task_id],
        )
        return date.fromisoformat(cursor.fetchone()[0])


def fill_task_days(alias: str, lines: Sequence) -> None:
    """Set ``task_day`` on line instances the ORM is about to insert, when partitions are on."""
    if not uses_partitions(alias):
        return
    missing = [line for line in lines if line.task_day is None]
    if missing:
        days = task_days(alias, {line.task_id for line in missing})
        today = timezone.now().date()
        for line in missing:
            line.task_day = days.get(line.task_id, today)
        for day in {line.task_day for line in missing}:
            ensure_on_first_use(alias, day)


def ensure_on_first_use(alias: str, day: date) -> None:
    """Create the partition of ``day`` if it is missing, within the flush's transaction but
    in a savepoint and with a short lock wait: when that fails, the lines go to the default
    partition and the next prune moves them."""
    period = settings.PARTITIONS
    start = period_start(day, period)
    if (alias, start) in _created_here:
        return
    if not is_partitioned(alias):  # E032: the setting is on, the table not converted yet
        _created_here.add((alias, start))
        return
    previous = _set_lock_timeout(alias, FIRST_USE_LOCK_TIMEOUT)
    try:
        with transaction.atomic(using=alias):
            create_partition(alias, start, period)
    except DatabaseError:
        return
    finally:
        _set_lock_timeout(alias, previous)
    _created_here.add((alias, start))


def _set_lock_timeout(alias: str, timeout: str) -> str:
    """Set ``lock_timeout`` for the current transaction; returns the value it had."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
            [timeout],
        )
        return cursor.fetchone()[0]


def create_partition(alias: str, start: date, period: str) -> bool:
    """Create the partition starting at ``start``; returns False when it exists already.

    Lines of that period waiting in the default partition move into it, in the same
    transaction, so that attaching it finds the default partition clean.
    """
    connection = connections[alias]
    name, end = partition_name(start, period), period_end(start, period)
    quote = connection.ops.quote_name
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lines_table()])
        cursor.execute("SELECT to_regclass(%s)", [name])
        if cursor.fetchone()[0] is not None:
            return False
        cursor.execute(
            f"CREATE TABLE {quote(name)} (LIKE {quote(lines_table())} "
            "INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        if _exists(cursor, default_name()):
            cursor.execute(
                f"WITH moved AS (DELETE FROM {quote(default_name())} "
                f"WHERE {KEY_COLUMN} >= %s AND {KEY_COLUMN} < %s RETURNING *) "
                f"INSERT INTO {quote(name)} SELECT * FROM moved",
                [start, end],
            )
        cursor.execute(
            f"ALTER TABLE {quote(lines_table())} ATTACH PARTITION {quote(name)} "
            "FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
    return True


def _exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cursor.fetchone()[0]


def ensure_ahead(alias: str, period: str, today: date | None = None, ahead: int = AHEAD) -> list:
    """Create the partitions of the current period and the ``ahead`` next ones, and the default
    partition; returns the names created."""
    today = today or timezone.now().date()
    created = []
    start = period_start(today, period)
    with transaction.atomic(using=alias):
        _set_lock_timeout(alias, DDL_LOCK_TIMEOUT)
        for _ in range(ahead + 1):
            if create_partition(alias, start, period):
                created.append(partition_name(start, period))
            start = period_end(start, period)
        if _create_default(alias):
            created.append(default_name())
    return created


def _create_default(alias: str) -> bool:
    connection = connections[alias]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if _exists(cursor, default_name()):
            return False
        cursor.execute(
            f"CREATE TABLE {quote(default_name())} PARTITION OF {quote(lines_table())} DEFAULT"
        )
    return True


@dataclass(frozen=True)
class Dropped:
    partition: Partition
    logs: int
    lines: int


def droppable(alias: str, cutoff: datetime) -> list[Partition]:
    """Partitions whose period ended before ``cutoff`` and in which no log was written since
    (nor runs): dropping them loses nothing that retention keeps."""
    found = []
    for partition in partitions(alias):
        if partition.end > cutoff.date():
            break
        if not _holds_kept_logs(alias, partition, cutoff):
            found.append(partition)
    return found


def _holds_kept_logs(alias: str, partition: Partition, cutoff: datetime) -> bool:
    logs = _logs_in(alias, partition)
    return (logs.filter(last_seen__gte=cutoff) | logs.running()).exists()


def _logs_in(alias: str, partition: Partition):
    from .models import TaskLog

    return TaskLog.objects.using(alias).first_recorded_between(partition.start, partition.end)


def count_partition(alias: str, partition: Partition) -> tuple[int, int]:
    """``(logs, lines)`` stored in ``partition``."""
    quote = connections[alias].ops.quote_name
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {quote(partition.name)}")
        return _logs_in(alias, partition).count(), cursor.fetchone()[0]


def drop_partition(alias: str, partition: Partition, cutoff: datetime) -> Dropped | None:
    """Drop ``partition`` and delete its logs in one transaction; None when a log in it came
    alive meanwhile (a retry) or the table stayed locked: the row-by-row delete handles it."""
    quote = connections[alias].ops.quote_name
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            _set_lock_timeout(alias, DDL_LOCK_TIMEOUT)
            list(_logs_in(alias, partition).select_for_update().values_list("pk", flat=True))
            if _holds_kept_logs(alias, partition, cutoff):
                return None
            logs, lines = count_partition(alias, partition)
            # An archived log's object goes first, as in ``delete_with_lines``.
            archived = _logs_in(alias, partition).exclude(archive_name="")
            delete_objects(list(archived.values_list("archive_name", flat=True)))
            _logs_in(alias, partition).delete()
            cursor.execute(f"DROP TABLE {quote(partition.name)}")
    except (DatabaseError, ArchiveError):
        return None
    _created_here.clear()
    return Dropped(partition, logs, lines)


@dataclass(frozen=True)
class Rebuilt:
    lines: int
    partitions: int


def convert(alias: str, period: str, today: date | None = None) -> Rebuilt:
    """Turn the populated lines table into a partitioned one, in one transaction that holds
    an ACCESS EXCLUSIVE lock on it throughout (readers and writers wait; see docs/scaling.md
    for the time it takes). Each line's key is its task's day; a line without a log gets the
    day it was written."""
    return _rebuild(alias, period, today or timezone.now().date())


def revert(alias: str) -> Rebuilt:
    """The reverse of ``convert``: one plain lines table again, under the same lock."""
    return _rebuild(alias, None, None)


def _rebuild(alias: str, period: str | None, today: date | None) -> Rebuilt:
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = lines_table()
    old = f"{table}_old"
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {quote(table)} IN ACCESS EXCLUSIVE MODE")
        if is_partitioned(alias) == (period is not None):
            raise ValueError(
                "the lines table is partitioned already" if period else "it is not partitioned"
            )
        constraints, indexes, columns = _definition(cursor, table)
        cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
        for name in [name for name, _definition in constraints + indexes]:
            cursor.execute(f"ALTER INDEX {quote(name)} RENAME TO {quote(_aside(name))}")
        like = f"LIKE {quote(old)} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS"
        if period:
            cursor.execute(
                f"CREATE TABLE {quote(table)} ({like}) PARTITION BY RANGE ({KEY_COLUMN})"
            )
            cursor.execute(
                f"ALTER TABLE {quote(table)} ALTER {KEY_COLUMN} SET NOT NULL, "
                f"ALTER {KEY_COLUMN} SET DEFAULT {KEY_DEFAULT}"
            )
        else:
            cursor.execute(f"CREATE TABLE {quote(table)} ({like})")
            cursor.execute(
                f"ALTER TABLE {quote(table)} ALTER {KEY_COLUMN} DROP NOT NULL, "
                f"ALTER {KEY_COLUMN} DROP DEFAULT"
            )
        for name, definition in constraints:
            keyed_definition = (
                re.sub(r"\)$", f", {KEY_COLUMN})", definition)
                if period
                else definition.replace(f", {KEY_COLUMN})", ")")
            )
            cursor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {keyed_definition}"
            )
        for _name, definition in indexes:
            cursor.execute(definition)  # names the table, now the new one
        created = _partitions_for(alias, cursor, old, period, today) if period else 0
        names = ", ".join(quote(column) for column in columns)
        selected = ", ".join(f"line.{quote(column)}" for column in columns)
        cursor.execute(
            f"INSERT INTO {quote(table)} ({names}, {KEY_COLUMN}) "
            f"SELECT {selected}, COALESCE(log.day, (line.timestamp AT TIME ZONE 'UTC')::date) "
            f"FROM {quote(old)} line LEFT JOIN "
            f"(SELECT task_id, {TASK_DAY_SQL} AS day FROM {logs_table()}) log "
            "ON log.task_id = line.task_id"
        )
        copied = cursor.rowcount
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
            f"(SELECT COALESCE(max(id), 0) + 1 FROM {quote(table)}), false)",
            [table],
        )
        cursor.execute(f"DROP TABLE {quote(old)}")
    _created_here.clear()
    _converted.clear()
    return Rebuilt(copied, created)


def _aside(name: str) -> str:
    return f"{name[:59]}_old"


def _definition(cursor, table: str) -> tuple[list, list, list]:
    """The table's primary key and unique constraints, its other indexes and its columns
    (less the key): what a rebuilt table needs to be the same table to Django."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u') ORDER BY conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = to_regclass(%s) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint WHERE conindid = pg_index.indexrelid) ORDER BY 1",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped AND attname <> %s ORDER BY attnum",
        [table, KEY_COLUMN],
    )
    return constraints, indexes, [column for (column,) in cursor.fetchall()]


def _partitions_for(alias: str, cursor, old: str, period: str, today: date) -> int:
    """Create the partitions the copied lines need, the ones ahead and the default one."""
    cursor.execute(f"SELECT min({TASK_DAY_SQL}) FROM {logs_table()}")
    first = min(cursor.fetchone()[0] or today, today)
    start, last = period_start(first, period), period_start(today, period)
    for _ in range(AHEAD):
        last = period_end(last, period)
    created = 0
    while start <= last:
        created += create_partition(alias, start, period)
        start = period_end(start, period)
    return created + _create_default(alias)
