"""A row the database refuses for its content never blocks the others (issue 10.6), and the
outage backoff stays bounded however long the outage (10.8).

Run on PostgreSQL under ``make test`` (``smallint`` levels, ``varchar`` limits, no NUL in text).
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from django.db import DataError, OperationalError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tasklog.capture import capture_output, storage
from tasklog.capture.context import StorageHealth, health
from tasklog.capture.streams import TaskLogHandler
from tasklog.models import TaskLog, TaskLogLine
from tests import harness, tasks, writer_model
from tests.utils import log_of, stored

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def healthy_database():
    health.succeeded()


def capture(task_id: str, **options):
    return capture_output(task_id, **{"task_name": "tests.refused", "synchronous": True} | options)


def rows(task_id: str) -> list[tuple]:
    return list(
        TaskLogLine.objects.for_task(task_id)
        .order_by("seq")
        .values_list("seq", "stream", "level", "message")
    )


@pytest.mark.parametrize(
    ("level", "stored_level", "prefix"),
    [
        (40000, 32767, "[Level 40000] "),
        (2**40, 32767, f"[Level {2**40}] "),
        (32767, 32767, ""),
        (1, 1, ""),
        (logging.ERROR, logging.ERROR, ""),
    ],
)
def test_a_custom_level_is_stored_in_the_columns_range_keeping_its_name(
    level, stored_level, prefix
):
    logger = logging.getLogger("tests.custom")
    logger.setLevel(1)
    with capture("custom-level"):
        print("before")
        logger.log(level, "custom")
        print("after")

    assert rows("custom-level") == [
        (1, "stdout", None, "before"),
        (2, "log", stored_level, f"{prefix}custom"),
        (3, "stdout", None, "after"),
    ]
    assert health.healthy


def installed_handler() -> TaskLogHandler:
    return next(h for h in logging.getLogger().handlers if isinstance(h, TaskLogHandler))


@pytest.mark.abuse
@pytest.mark.parametrize(
    ("levelno", "levelname", "stored_level"),
    [(-5, "Level -5", 0), (0, "NOTSET", 0), ("high", "HIGH", None), (25.0, "Level 25", 25)],
)
def test_levels_logging_itself_would_not_pass_are_stored_too(levelno, levelname, stored_level):
    record = logging.makeLogRecord(
        {"name": "tests.odd", "levelno": levelno, "levelname": levelname, "msg": "odd level"}
    )
    with capture("odd-level"):
        installed_handler().handle(record)

    prefix = "" if stored_level == levelno else f"[{levelname}] "
    assert rows("odd-level") == [(1, "log", stored_level, f"{prefix}odd level")]


def test_lines_given_to_the_run_directly_are_made_safe_too(settings):
    settings.CELERY_TASKLOG_BATCH_SIZE = 1000
    with capture("refused-row") as run:
        print("one")
        run.add_line("log", "a level no column holds", 40000)  # not through logging
        run.add_line("log", "a negative level", -5)
        print("four")

    assert rows("refused-row") == [
        (1, "stdout", None, "one"),
        (2, "log", 32767, "a level no column holds"),
        (3, "log", 0, "a negative level"),
        (4, "stdout", None, "four"),
    ]
    assert (log_of("refused-row").lines, log_of("refused-row").dropped) == (4, 0)
    assert health.healthy and health.failures == 0


def refuse_poison(monkeypatch):
    """A database that refuses any row whose text says "poison", whatever its form (the edge
    under test: a refusal whose cause the capture does not know)."""
    real_insert = storage.insert_rows

    def insert_rows(rows, alias):
        if any("poison" in row[5] for row in rows):
            raise DataError("value refused by a check")
        return real_insert(rows, alias)

    monkeypatch.setattr(storage, "insert_rows", insert_rows)


def test_a_row_refused_in_every_form_is_replaced_by_a_marker_saying_why(monkeypatch, settings):
    settings.CELERY_TASKLOG_BATCH_SIZE = 1000
    refuse_poison(monkeypatch)

    with capture("poisoned"):
        for number in range(1, 101):
            print("poison" if number == 37 else f"line {number}")

    lines = stored("poisoned")
    assert len(lines) == 100
    assert lines[36] == (
        37,
        "marker",
        "Line 37 not stored: the database refused it (DataError: value refused by a check).",
    )
    assert [message for _seq, stream, message in lines if stream == "stdout"] == [
        f"line {number}" for number in range(1, 101) if number != 37
    ]
    assert health.healthy


@pytest.mark.django_db(transaction=True)
def test_a_refused_row_does_not_delay_other_tasks(monkeypatch):
    refuse_poison(monkeypatch)

    with capture_output("poisoned-async") as poisoned:
        print("poison")
    with capture_output("healthy-neighbour") as other:
        print("fine")
    assert poisoned.closed.wait(10) and other.closed.wait(10)

    assert stored("healthy-neighbour") == [(1, "stdout", "fine")]
    assert stored("poisoned-async")[0][1] == "marker"
    assert health.healthy


def test_a_connection_error_still_means_unreachable(monkeypatch):
    def away(rows, alias):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(storage, "insert_rows", away)
    with capture("away"):
        print("kept for later")

    assert not health.healthy


def test_an_error_that_is_no_refusal_of_a_row_gives_up_after_a_few_flushes(monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("a bug in the flush")

    monkeypatch.setattr(storage, "open_run", broken)
    with capture("broken") as run:
        print("echoed instead")

    assert run.closed.is_set()
    assert health.healthy
    assert "echoed instead" in capsys.readouterr().out
    assert not TaskLog.objects.filter(task_id="broken").exists()


@pytest.mark.abuse
def test_values_at_every_columns_limit(settings, capsys):
    settings.CELERY_TASKLOG_MAX_LINE_LENGTH = 100
    longest_id = "i" * 255
    origin = {
        "launched_by": "u" * 200,
        "launched_by_user_id": "9" * 100,
        "launched_from": "/" * 300,
    }

    with capture(longest_id, task_name="n" * 300, worker="w" * 300, origin=origin):
        print("x" * 100)
        print("y" * 101)

    log = log_of(longest_id)
    assert (len(log.task_name), len(log.worker)) == (255, 255)
    assert (len(log.launched_by), len(log.launched_by_user_id), len(log.launched_from)) == (
        150,
        64,
        255,
    )
    assert [message for _seq, _stream, message in stored(longest_id)] == [
        "x" * 100,
        "y" * 100 + " [… 1 characters cut]",
    ]

    with capture("i" * 256) as run:
        print("an id no column holds")
    assert run is None
    assert "an id no column holds" in capsys.readouterr().out
    assert not TaskLog.objects.filter(task_id__startswith="i" * 256).exists()


@pytest.mark.abuse
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(item_list=st.lists(writer_model.items, max_size=12))
def test_fuzzed_output_is_stored_exactly_as_the_model_says(settings, item_list):
    settings.CELERY_TASKLOG_MAX_LINE_LENGTH = 300
    settings.CELERY_TASKLOG_MAX_LINES = 0
    task_id = f"fuzz-{uuid.uuid4()}"

    with capture(task_id):
        writer_model.write_items(item_list)

    stored_rows = [row[1:] for row in rows(task_id)]
    assert [(stream, message, level) for stream, level, message in stored_rows] == (
        writer_model.expected_rows(item_list, 300)
    )
    assert health.healthy


def test_the_outage_backoff_stays_capped_after_thousands_of_failures():
    outage = StorageHealth()
    outage.failures = 5000

    outage.failed(OperationalError("still away"))

    assert 0 < outage.retry_at - time.monotonic() <= StorageHealth.MAX_BACKOFF
    assert [StorageHealth.backoff(n) for n in (1, 2, 3, 4, 5, 10**9)] == [0.5, 1, 2, 4, 5, 5]


def assert_stored_once_or_explained(task_id: str, expected: list[tuple]) -> None:
    """Every line written is stored once, in order, at its own seq; a line the database
    refused in every form is a marker at that seq saying so."""
    lines = rows(task_id)
    assert [seq for seq, *_rest in lines] == list(range(1, len(expected) + 1))
    for (seq, stream, level, message), (want_stream, want_message, want_level) in zip(
        lines, expected, strict=True
    ):
        if stream == "marker":
            assert message.startswith(f"Line {seq} not stored: the database refused it (")
        else:
            assert (stream, message, level) == (want_stream, want_message, want_level)


@pytest.mark.integration
@pytest.mark.abuse
@hypothesis_settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(item_list=st.lists(writer_model.items, min_size=1, max_size=40))
def test_what_a_task_writes_is_stored_exactly_once_through_a_real_worker(worker_factory, item_list):
    worker = getattr(worker_factory, "started", None)
    if worker is None:  # one worker for every example: the fixture outlives them
        worker = worker_factory.started = worker_factory(
            pool="prefork",
            concurrency=1,
            env={"CELERY_TASKLOG_MAX_LINE_LENGTH": "300", "CELERY_TASKLOG_MAX_LINES": "0"},
        )

    result = tasks.write_fuzzed.delay(item_list)

    assert harness.wait_for_task_result(result.id, worker=worker).status == "SUCCESS"
    assert_stored_once_or_explained(result.id, writer_model.expected_rows(item_list, 300))
