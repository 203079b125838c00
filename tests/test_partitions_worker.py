"""Capture into a partitioned lines table: real workers, a queued row, retries and a race."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from celery import states
from django.db import connection, connections
from django.utils import timezone

from tasklog import partitions
from tasklog.capture import capture_output
from tasklog.models import TaskLog
from tests import harness, tasks
from tests.test_capture_worker import expected_numbered
from tests.utils import RETRIES_IN_ORDER, log_of, messages, retried_twice_log, stored, wait_for

pytestmark = [pytest.mark.postgresql, pytest.mark.integration]

BY_DAY = {"CELERY_TASKLOG_PARTITIONS": "day", "CELERY_TASKLOG_MAX_LINES": "0"}


@pytest.fixture
def by_day(transactional_db, settings):
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    settings.CELERY_TASKLOG_MAX_LINES = 0
    partitions.convert("default", "day")
    yield
    partitions.revert("default")


def partitions_of(task_id: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM tasklog_tasklogline WHERE task_id = %s",
            [task_id],
        )
        return {name for (name,) in cursor.fetchall()}


def day_partition(days_ago: int) -> str:
    return partitions.partition_name(timezone.now().date() - timedelta(days=days_ago), "day")


def test_a_task_queued_days_ago_writes_into_its_queued_days_partition(by_day, worker_factory):
    queued = timezone.now() - timedelta(days=3)
    TaskLog.objects.create(task_id="queued-3-days", queued=queued, last_seen=queued)
    worker = worker_factory(pool="threads", concurrency=2, env=BY_DAY)

    tasks.print_numbered.apply_async(("q", 500), task_id="queued-3-days")
    fresh = tasks.print_numbered.delay("fresh", 50)

    for task_id in ("queued-3-days", fresh.id):
        assert harness.wait_for_task_result(task_id, worker=worker).status == states.SUCCESS
    wait_for(lambda: log_of(fresh.id).finished and log_of("queued-3-days").finished)
    assert messages("queued-3-days") == expected_numbered("q", 500)
    assert partitions_of("queued-3-days") == {day_partition(3)}  # made on first use
    assert messages(fresh.id) == expected_numbered("fresh", 50)
    assert partitions_of(fresh.id) == {day_partition(0)}


def test_a_retried_task_keeps_one_gap_free_log_in_one_partition(by_day, worker_factory):
    worker = worker_factory(**RETRIES_IN_ORDER, env=BY_DAY)

    result = tasks.retry_twice.delay()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    wait_for(lambda: log_of(result.id).finished)
    log = log_of(result.id)
    assert stored(result.id) == retried_twice_log(log.worker)
    assert partitions_of(result.id) == {day_partition(0)}


def test_two_racing_runs_of_one_task_number_their_lines_once(by_day, settings):
    """A retry racing its predecessor's last flushes, on a task started two days ago."""
    settings.CELERY_TASKLOG_BATCH_SIZE = 7
    started = timezone.now() - timedelta(days=2)
    TaskLog.objects.create(task_id="raced", started=started, last_seen=started)
    go = threading.Barrier(2)

    def run(label: str) -> None:
        try:
            with capture_output("raced", task_name="raced", worker=label, synchronous=True):
                go.wait()
                for number in range(300):
                    print(f"{label} {number}")
        finally:
            connections.close_all()

    runs = [threading.Thread(target=run, args=(label,)) for label in ("a", "b")]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()

    lines = stored("raced")
    assert [seq for seq, _stream, _message in lines] == list(range(1, len(lines) + 1))
    printed = [message for _seq, stream, message in lines if stream == "stdout"]
    assert sorted(printed) == sorted(f"{label} {n}" for label in "ab" for n in range(300))
    assert partitions_of("raced") == {day_partition(2)}
