"""CELERY_TASKLOG_PARTITIONS: bad values, the wrong database, a table that disagrees (E030-E034),
and the tasklog_partition command's hostile uses."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tasklog import partitions
from tasklog.checks import check_partitions, check_settings
from tasklog.conf import settings as tasklog_settings

pytestmark = pytest.mark.django_db


def ids(errors) -> list[str]:
    return [error.id for error in errors]


@pytest.mark.parametrize(
    ("value", "period"), [("day", "day"), ("week", "week"), (" Week ", "week"), (None, None)]
)
def test_good_values(settings, value, period):
    settings.CELERY_TASKLOG_PARTITIONS = value
    assert check_settings() == []
    assert tasklog_settings.value("PARTITIONS") == period


@pytest.mark.abuse
@pytest.mark.parametrize(
    "value",
    [
        "month",
        "",
        "day; DROP TABLE tasklog_tasklogline",
        "d\u0430y",  # a Cyrillic a
        "day\x00",
        "w" * 100_000,
        1,
        True,
        ["day"],
        {"period": "day"},
        b"day",
    ],
)
def test_hostile_values_are_a_check_error_and_capture_stays_unpartitioned(settings, value):
    settings.CELERY_TASKLOG_PARTITIONS = value

    [error] = check_settings()

    assert error.id == "tasklog.E030"
    assert error.msg.startswith('The setting CELERY_TASKLOG_PARTITIONS must be "day", "week"')
    assert len(error.msg) < 300
    assert tasklog_settings.PARTITIONS is None  # the default: lines are written as before


@pytest.mark.abuse
def test_a_hostile_environment_value_is_reported_as_such(monkeypatch):
    monkeypatch.setenv("CELERY_TASKLOG_PARTITIONS", "fortnight")
    [error] = check_settings()
    assert error.id == "tasklog.E030"
    assert "environment variable" in error.msg


@pytest.mark.django_db(databases=["default", "sqlite"])
def test_partitions_on_another_database_than_postgresql(settings):
    settings.CELERY_TASKLOG_PARTITIONS = "week"
    settings.CELERY_TASKLOG_DATABASE = "sqlite"

    [error] = check_partitions(databases=None)

    assert error.id == "tasklog.E031"
    assert "needs PostgreSQL, but the log database 'sqlite' is sqlite" in error.msg


@pytest.mark.postgresql
def test_the_setting_on_without_conversion(settings):
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    assert check_partitions(databases=None) == []  # a plain `check` does not query
    [error] = check_partitions(databases=["default"])
    assert error.id == "tasklog.E032"
    assert "tasklog_partition --convert" in error.hint


@pytest.mark.postgresql
def test_a_converted_table_with_the_setting_off_or_another_period(settings):
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    partitions.convert("default", "day")
    assert check_partitions(databases=["default"]) == []

    settings.CELERY_TASKLOG_PARTITIONS = None
    assert ids(check_partitions(databases=["default"])) == ["tasklog.E033"]

    settings.CELERY_TASKLOG_PARTITIONS = "week"
    [error] = check_partitions(databases=["default"])
    assert error.id == "tasklog.E034"
    assert "partitioned by day" in error.msg


def partition_command(*args) -> str:
    out = StringIO()
    call_command("tasklog_partition", *args, stdout=out)
    return out.getvalue()


@pytest.mark.abuse
@pytest.mark.postgresql
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--convert"], 'Set CELERY_TASKLOG_PARTITIONS to "day" or "week" first.'),
        (["--database", "nowhere\u202e"], "Unknown database 'nowhere\\u202e'."),
        (["--database", "x" * 10_000], "Unknown database 'xxxxxxxxxxxxxxx"),
        (["--database", "sqlite"], "Partitions need PostgreSQL; 'sqlite' is not."),
        (["--revert"], "Nothing done: it is not partitioned."),
    ],
)
def test_hostile_command_uses_change_nothing(args, message):
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        partition_command(*args)
    assert len(str(refused.value)) < 200
    assert not partitions.is_partitioned("default")


@pytest.mark.abuse
@pytest.mark.postgresql
def test_converting_twice_or_both_ways_at_once_is_refused(settings):
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    with pytest.raises(CommandError, match="not allowed with argument"):
        partition_command("--convert", "--revert")
    partition_command("--convert")
    with pytest.raises(CommandError, match="Nothing done: the lines table is partitioned already"):
        partition_command("--convert")
    assert partitions.is_partitioned("default")
    assert connection.in_atomic_block  # the test's transaction undoes the conversion
