"""The fast insert of a batch of line rows on SQLite and MySQL/MariaDB: one statement, many rows.

The ORM's ``bulk_create`` builds a model instance and adapts every field of every row in
Python, which caps a flush at about a third of what the driver's ``executemany`` ingests. Here
the rows (``storage.LINE_COLUMNS`` order) go to the driver as they are, with only the timestamp
turned into the naive text Django itself stores and the extra fields into JSON text. The
semantics stay ``bulk_create``'s with ``ignore_conflicts=True``: a row already stored under its
(task_id, seq), as after a retried flush, is skipped; any other error is raised as Django's
(``IntegrityError``, ``DataError``, ...): the statement goes through Django's cursor
(``wrap_database_errors``, ``execute_wrapper``s), in a savepoint, so a failing batch stores
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import TaskLogLine

_PLACEHOLDERS = "(%s, %s, %s, %s, %s, %s, %s, %s)"  # Django's style; SQLite's cursor makes "?"


def insert_sqlite(connection, rows: Sequence[tuple]) -> None:
    """One prepared INSERT through ``sqlite3``'s ``executemany``. ``ON CONFLICT DO NOTHING``,
    not ``INSERT OR IGNORE``, which would also skip a row breaking NOT NULL without a word."""
    statement = (
        f"INSERT INTO {_table_and_columns(connection)} VALUES {_PLACEHOLDERS}"
        " ON CONFLICT DO NOTHING"
    )
    _execute_many(connection, statement, rows)


def insert_mysql(connection, rows: Sequence[tuple]) -> None:
    """A multi-row INSERT (``mysqlclient`` and PyMySQL batch ``executemany`` into statements of
    up to ``max_allowed_packet``). ``ON DUPLICATE KEY UPDATE`` a no-op, not ``INSERT IGNORE``,
    which would also turn a too-long value or a bad character into a warning and store it cut.
    """
    pk = connection.ops.quote_name(TaskLogLine._meta.pk.column)
    statement = (
        f"INSERT INTO {_table_and_columns(connection)} VALUES {_PLACEHOLDERS}"
        f" ON DUPLICATE KEY UPDATE {pk} = {pk}"
    )
    _execute_many(connection, statement, rows)


INSERTS: dict[str, Callable[[object, Sequence[tuple]], None]] = {
    "sqlite": insert_sqlite,
    "mysql": insert_mysql,
}


def _table_and_columns(connection) -> str:
    from .storage import LINE_COLUMNS  # storage calls this module

    quote = connection.ops.quote_name
    columns = ", ".join(quote(TaskLogLine._meta.get_field(name).column) for name in LINE_COLUMNS)
    return f"{quote(TaskLogLine._meta.db_table)} ({columns})"


def _execute_many(connection, statement: str, rows: Sequence[tuple]) -> None:
    zone: tzinfo = connection.timezone if settings.USE_TZ else timezone.get_default_timezone()
    utc = zone is UTC or getattr(zone, "key", None) == "UTC"
    values = [
        (
            task_id,
            seq,
            # The usual case inline (a microsecond a row): UTC to UTC is the ISO form's head.
            moment.isoformat(" ")[:-6] if utc and moment.tzinfo is UTC else _text(moment, zone),
            stream,
            level,
            message,
            logger,
            None if extra is None else json.dumps(extra),  # JSONField's text on both
        )
        for task_id, seq, moment, stream, level, message, logger, extra in rows
    ]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(statement, values)  # Django's cursor: its errors, its wrappers


def _text(moment: datetime, zone: tzinfo) -> str:
    """The naive text Django stores: an aware time in the database's zone, a naive one as is."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone).replace(tzinfo=None)
    return moment.isoformat(" ")
