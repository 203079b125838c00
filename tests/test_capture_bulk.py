"""The one-statement inserts of a flush (tasklog/capture/bulk.py), on the test database and on
SQLite: what is stored reads back as it was written, a retried row is skipped, and a row the
database rejects fails the whole batch with Django's error instead of being stored cut or not
at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DataError, IntegrityError, connections, transaction

from tasklog.capture.storage import insert_rows
from tasklog.models import Stream, TaskLogLine

pytestmark = pytest.mark.django_db(databases=["default", "sqlite"])

ALIASES = ["default", "sqlite"]
START = datetime(2026, 11, 25, 18, 0, 0, 123456, tzinfo=UTC)


def rows_of(task_id: str, messages: list[str], first_seq: int = 1) -> list[tuple]:
    return [
        (task_id, seq, START + timedelta(seconds=seq), Stream.STDOUT, None, message, "", None)
        for seq, message in enumerate(messages, start=first_seq)
    ]


def stored(alias: str, task_id: str) -> list[tuple]:
    lines = TaskLogLine.objects.using(alias).for_task(task_id).order_by("seq")
    columns = ("task_id", "seq", "timestamp", "stream", "level", "message", "logger", "extra")
    return list(lines.values_list(*columns))


@pytest.mark.parametrize("alias", ALIASES)
def test_rows_read_back_as_written(alias):
    rows = rows_of("t", ["plain", "emoji 🎉 four bytes", "", "ünïcödé\ttab"])
    rows.append(
        ("t", 5, START.replace(microsecond=0), Stream.LOG, 40, "whole second", "app.db", None)
    )
    rows.append(("t", 6, START, Stream.LOG, 20, "extra", "ü", {"n": 1, "s": 'ä "q"'}))
    rows.append(("t", 7, START.astimezone(None), Stream.MARKER, None, "another zone", "", None))

    insert_rows(rows, alias)

    assert stored(alias, "t") == rows


@pytest.mark.parametrize(
    ("use_tz", "time_zone", "stored_text"),
    [
        (True, "Asia/Tokyo", "2026-11-25 18:00:00.123456"),  # in UTC whatever TIME_ZONE says
        (False, "Asia/Tokyo", "2026-11-26 03:00:00.123456"),  # in local time, as Django does
        (False, "UTC", "2026-11-25 18:00:00.123456"),
    ],
)
def test_times_are_stored_as_django_stores_them(settings, use_tz, time_zone, stored_text):
    settings.USE_TZ, settings.TIME_ZONE = use_tz, time_zone
    rows = [("t", 1, START, Stream.STDOUT, None, "aware", "", None)]
    if not use_tz:  # the capture's markers then carry naive local times (timezone.now())
        naive = datetime.fromisoformat(stored_text)
        rows.append(("t", 2, naive, Stream.STDOUT, None, "naive", "", None))

    insert_rows(rows, "sqlite")

    with connections["sqlite"].cursor() as cursor:
        cursor.execute("SELECT CAST(timestamp AS TEXT) FROM tasklog_tasklogline ORDER BY seq")
        assert [text for (text,) in cursor.fetchall()] == [stored_text] * len(rows)


@pytest.mark.parametrize("alias", ALIASES)
def test_a_retried_batch_stores_each_row_once(alias):
    insert_rows(rows_of("t", ["a", "b"]), alias)

    insert_rows(rows_of("t", ["a", "b", "c"]), alias)

    assert [row[5] for row in stored(alias, "t")] == ["a", "b", "c"]


@pytest.mark.abuse
@pytest.mark.parametrize("alias", ALIASES)
def test_a_row_breaking_not_null_fails_the_whole_batch(alias):
    rows = rows_of("t", ["a", "b", "c"])
    rows[1] = (*rows[1][:5], None, "", None)

    with pytest.raises(IntegrityError), transaction.atomic(using=alias):  # as store_batch
        insert_rows(rows, alias)

    assert stored(alias, "t") == []


@pytest.mark.abuse
@pytest.mark.parametrize("alias", ALIASES)
def test_a_too_long_task_id_is_refused_or_stored_whole_never_cut(alias):
    task_id = "x" * 300  # the column holds 255 characters
    rows = rows_of(task_id, ["a", "b"])

    if connections[alias].vendor == "sqlite":  # SQLite does not enforce a varchar's length
        insert_rows(rows, alias)
        assert stored(alias, task_id) == rows
    else:
        with pytest.raises(DataError), transaction.atomic(using=alias):
            insert_rows(rows, alias)
        assert not TaskLogLine.objects.using(alias).filter(task_id__startswith="x").exists()


@pytest.mark.parametrize("alias", ALIASES)
def test_a_flush_is_one_statement_however_many_rows(alias):
    statements = []

    def count(execute, sql, params, many, context):
        if sql.startswith("INSERT"):
            statements.append(sql)
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(count):
        insert_rows(rows_of("t", [f"line {n}" for n in range(5000)]), alias)

    assert len(TaskLogLine.objects.using(alias).for_task("t")) == 5000
    if connections[alias].vendor in ("sqlite", "mysql"):  # PostgreSQL: one COPY, not seen here
        assert len(statements) == 1
