"""The harness itself: a real worker runs the example task, and missing services are reported."""

from __future__ import annotations

import json

import pytest
from celery import states
from django.test import override_settings

from example.tasks import timed_print_task
from tasklog.models import Stream, TaskLogLine
from tests import harness


@pytest.mark.integration
def test_worker_runs_timed_print_task_to_success(worker_factory):
    worker = worker_factory(pool="prefork", concurrency=2)

    task_id = timed_print_task.delay(count=3, interval=0.1).id

    result = harness.wait_for_task_result(task_id, worker=worker)
    assert result.status == states.SUCCESS
    assert json.loads(result.result) == "Printed 3 lines."
    assert result.task_name == "example.tasks.timed_print_task"
    printed = TaskLogLine.objects.for_task(task_id).in_streams(Stream.STDOUT)
    assert [line.message for line in printed] == ["Line 1 of 3", "Line 2 of 3", "Line 3 of 3"]


@pytest.mark.integration
def test_worker_reports_a_failing_task_as_failure(worker_factory):
    worker = worker_factory()

    task_id = timed_print_task.delay(count=2, interval=0.1, fail=True).id

    result = harness.wait_for_task_result(task_id, worker=worker)
    assert result.status == states.FAILURE
    assert json.loads(result.result)["exc_type"] == "RuntimeError"
    assert "timed_print_task was told to fail after 2 lines" in result.traceback


def test_service_problems_names_each_missing_service():
    assert harness.service_problems("django.db.backends.sqlite3", "memory://") == [
        "DATABASE_URL does not name a PostgreSQL or MySQL/MariaDB database",
        "CELERY_BROKER_URL does not name a Redis server",
    ]


@pytest.mark.parametrize("engine", ["django.db.backends.postgresql", "django.db.backends.mysql"])
def test_service_problems_accepts_postgresql_and_mysql(engine):
    assert harness.service_problems(engine, "redis://127.0.0.1:1/0") == [
        "Redis at redis://127.0.0.1:1/0 does not answer"
    ]


def test_service_problems_reports_a_redis_that_does_not_answer():
    assert harness.service_problems("django.db.backends.postgresql", "redis://127.0.0.1:1/0") == [
        "Redis at redis://127.0.0.1:1/0 does not answer"
    ]


@override_settings(CELERY_BROKER_URL="memory://")
@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_services_fail_in_ci_and_skip_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="CELERY_BROKER_URL does not name a Redis server"):
        harness.require_services()
