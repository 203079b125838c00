"""The database going away never breaks a task; what it cost is counted and marked."""

import time

import pytest
from django.db import OperationalError

from tasklog.capture import capture_output, storage
from tasklog.capture.context import health
from tests.utils import log_of, messages, stored


@pytest.fixture(autouse=True)
def healthy_database():
    """Each test starts with the process's view of the database healthy, as a new worker does."""
    health.succeeded()


class FlakyDatabase:
    """Stands for a database that refuses writes while ``down`` is set (the edge under test)."""

    def __init__(self, monkeypatch):
        self.down = True
        self.refused = 0
        real_insert = storage.insert_rows

        def insert_rows(rows, alias):
            if self.down:
                self.refused += 1
                raise OperationalError("server closed the connection unexpectedly")
            return real_insert(rows, alias)

        monkeypatch.setattr(storage, "insert_rows", insert_rows)


@pytest.mark.django_db
def test_a_failed_flush_keeps_the_lines_for_the_next_one(monkeypatch, settings):
    settings.CELERY_TASKLOG_BATCH_SIZE = 2
    database = FlakyDatabase(monkeypatch)

    with capture_output("flaky-sync", synchronous=True):
        print("one")
        print("two")
        print("three")
        database.down = False
        print("four")

    assert database.refused >= 1
    assert messages("flaky-sync") == ["one", "two", "three", "four"]
    assert log_of("flaky-sync").dropped == 0
    assert health.healthy


@pytest.mark.django_db(transaction=True)
def test_an_outage_drops_the_oldest_lines_past_the_buffer_and_marks_them(
    monkeypatch, settings, capsys
):
    settings.CELERY_TASKLOG_BUFFER_LINES = 5
    database = FlakyDatabase(monkeypatch)

    started = time.monotonic()
    with capture_output("outage") as capture:
        for number in range(1, 21):
            print(f"line {number}")
        elapsed_in_task = time.monotonic() - started
        database.down = False
    assert capture.closed.wait(10), "the flusher stores the rest once the database is back"

    assert elapsed_in_task < 3, "the task does not wait out the outage"
    assert database.refused >= 1
    log = log_of("outage")
    lines = stored("outage")
    marker = next(line for line in lines if line[1] == "marker")
    kept = [message for _seq, stream, message in lines if stream == "stdout"]
    lost = 20 - len(kept)
    assert lost > 0
    assert marker[2].startswith(
        f"{lost} lines lost while the database was unreachable or slower than the task (seq 1 to "
    )
    assert kept == [f"line {number}" for number in range(lost + 1, 21)]
    assert (log.lines, log.dropped) == (20, lost)
    assert [seq for seq, _stream, _message in lines] == [1, *range(lost + 1, 21)]
    echoed = capsys.readouterr().out
    assert all(f"line {number}\n" in echoed for number in range(1, lost + 1))


@pytest.mark.django_db(transaction=True)
def test_a_task_ends_at_once_while_the_database_is_away(monkeypatch):
    database = FlakyDatabase(monkeypatch)

    started = time.monotonic()
    with capture_output("still-away") as capture:
        print("written during the outage")
    ended_after = time.monotonic() - started

    assert ended_after < 3
    database.down = False
    assert capture.closed.wait(10)
    assert messages("still-away") == ["written during the outage"]


def unacknowledged_once(monkeypatch, name):
    """The first call of ``storage.<name>`` commits, then the connection "drops" before the
    answer arrives: the caller sees an error for work that was done."""
    real = getattr(storage, name)
    calls = []

    def commit_then_fail(*args):
        result = real(*args)
        if not calls:
            calls.append(name)
            raise OperationalError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(storage, name, commit_then_fail)
    return calls


@pytest.mark.django_db
def test_a_committed_flush_whose_answer_was_lost_is_not_stored_twice(monkeypatch, settings):
    settings.CELERY_TASKLOG_BATCH_SIZE = 2
    failed = unacknowledged_once(monkeypatch, "store_batch")

    with capture_output("unacknowledged-flush", synchronous=True):
        for number in range(1, 6):
            print(f"line {number}")

    assert failed == ["store_batch"]
    assert stored("unacknowledged-flush") == [
        (number, "stdout", f"line {number}") for number in range(1, 6)
    ]
    assert (log_of("unacknowledged-flush").lines, log_of("unacknowledged-flush").dropped) == (5, 0)


@pytest.mark.django_db
def test_a_committed_open_whose_answer_was_lost_is_not_a_second_attempt(monkeypatch):
    failed = unacknowledged_once(monkeypatch, "open_run")

    with capture_output("unacknowledged-open", synchronous=True):
        print("only line")

    assert failed == ["open_run"]
    assert stored("unacknowledged-open") == [(1, "stdout", "only line")]
    assert log_of("unacknowledged-open").attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_full_buffer_waits_for_a_slow_database_then_drops_the_oldest(monkeypatch, settings):
    """The documented backpressure rule: a task whose buffer is full waits for the flusher up
    to BACKPRESSURE_TIMEOUT, then the oldest waiting lines are dropped, even though the
    database is reachable (just slower than the task)."""
    from tasklog.capture import buffer

    settings.CELERY_TASKLOG_BUFFER_LINES = 5
    settings.CELERY_TASKLOG_BATCH_SIZE = 5
    monkeypatch.setattr(buffer, "BACKPRESSURE_TIMEOUT", 0.1)
    real_insert = storage.insert_rows

    def slow_insert(rows, alias):
        time.sleep(0.5)
        return real_insert(rows, alias)

    monkeypatch.setattr(storage, "insert_rows", slow_insert)
    with capture_output("slow-database") as capture:
        for number in range(1, 41):
            print(f"line {number}")
    assert capture.closed.wait(20)

    log = log_of("slow-database")
    markers = [message for _seq, stream, message in stored("slow-database") if stream == "marker"]
    assert log.dropped > 0 and health.healthy
    assert markers and all(
        "lost while the database was unreachable or slower" in m for m in markers
    )
    kept = [message for _seq, stream, message in stored("slow-database") if stream == "stdout"]
    assert len(kept) + log.dropped == 40
