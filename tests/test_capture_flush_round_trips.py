"""A flush's round trips to PostgreSQL (issue 16): the usual batch is one claim (which carries
the NOTIFY of pushed live views) and one COPY, no savepoint; a row the database refuses rolls
that transaction back and the batch is stored again, refused rows isolated.

Run on PostgreSQL under ``make test``.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from tasklog import push
from tasklog.capture import capture_output
from tasklog.capture.context import health
from tasklog.models import TaskLogLine
from tests.utils import log_of, stored

# COPY, savepoints and NOTIFY: PostgreSQL only.
pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def healthy_database():
    health.succeeded()


def capture(task_id: str):
    return capture_output(task_id, task_name="tests.round_trips", synchronous=True)


def test_a_flush_sends_the_claim_with_its_notify_and_no_savepoint():
    assert push.is_on("default")
    statements = []

    def note(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with capture("round-trips") as captured:
        print("opened")
        captured.flush()  # the run is open: what follows is one flush of the usual batch
        with connection.execute_wrapper(note):
            print("one")
            print("two")
            captured.flush()

    assert [sql.split()[0] for sql in statements] == ["UPDATE"]
    assert "RETURNING pg_notify" in statements[0]
    assert stored("round-trips") == [
        (1, "stdout", "opened"),
        (2, "stdout", "one"),
        (3, "stdout", "two"),
    ]


def test_a_row_postgresql_refuses_rolls_the_flush_back_and_the_rest_is_stored():
    """A row stored already under its seq (as after a retried flush) is a real refusal by the
    database, in the middle of the flush's COPY: the rows around it are stored all the same."""
    with capture("refused-midway") as captured:
        print("one")
        captured.flush()
        TaskLogLine.objects.create(
            task_id="refused-midway",
            seq=3,
            stream="stdout",
            timestamp=timezone.now(),
            message="there",
        )
        print("two")
        print("three")
        print("four")

    assert stored("refused-midway") == [
        (1, "stdout", "one"),
        (2, "stdout", "two"),
        (3, "stdout", "there"),
        (4, "stdout", "four"),
    ]
    assert log_of("refused-midway").lines == 4
    assert health.healthy and health.failures == 0
