"""RabbitMQ, Celery's default broker, with real workers: a task acknowledged late whose worker is
killed is redelivered by the broker, and its log goes on as one log."""

from __future__ import annotations

import os

import pytest
from celery import Celery, states

from tasklog.models import TaskLog
from tests import harness, tasks
from tests.utils import log_of, stored, wait_for

pytestmark = pytest.mark.integration


def rabbitmq_url() -> str:
    """``AMQP_BROKER_URL`` (``scripts/with_services.py`` starts RabbitMQ); skip, or fail in CI."""
    url = os.environ.get("AMQP_BROKER_URL", "")
    if not url.startswith("amqp://"):
        harness.service_missing("needs RabbitMQ: AMQP_BROKER_URL is unset (`make test` starts it)")
    return url


@pytest.fixture
def celery_app(monkeypatch):
    """The test suite's Celery configuration on RabbitMQ, with an empty default queue; the
    ``worker_factory`` workers ping through it.

    Celery prefers the ``CELERY_BROKER_URL`` environment variable to any configured broker, so
    that is what names RabbitMQ here (and to the workers)."""
    monkeypatch.setenv("CELERY_BROKER_URL", rabbitmq_url())
    app = Celery("tests-rabbitmq", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.control.purge()
    yield app
    app.close()


@pytest.fixture
def start_rabbitmq_worker(worker_factory):
    broker = {"CELERY_BROKER_URL": os.environ["CELERY_BROKER_URL"]}
    return lambda: worker_factory(pool="prefork", concurrency=1, env=broker)


def numbered(lines: list[tuple[int, str, str]]) -> list[str]:
    """``line N`` of each stored stdout line (the time of print cut off)."""
    return [message.split(" at ")[0] for _seq, _stream, message in lines]


def test_a_killed_worker_s_task_is_redelivered_and_its_log_goes_on(
    celery_app, start_rabbitmq_worker
):
    first = start_rabbitmq_worker()
    result = celery_app.send_task(tasks.print_slowly_acknowledged_late.name, args=(30, 0.05))
    wait_for(lambda: len(stored(result.id)) >= 10)

    first.kill()
    before = stored(result.id)
    second = start_rabbitmq_worker()

    assert harness.wait_for_task_result(result.id, worker=second).status == states.SUCCESS
    wait_for(lambda: TaskLog.objects.finished().filter(task_id=result.id).exists())
    lines = stored(result.id)
    killed = len(before)
    assert lines[:killed] == before
    assert numbered(before) == [f"line {number}" for number in range(1, killed + 1)]
    assert lines[killed][1:] == (
        "marker",
        f"Attempt 2 (redelivered) started on {second.nodename}. "
        "The previous attempt did not finish.",
    )
    assert numbered(lines[killed + 1 :]) == [f"line {number}" for number in range(1, 31)]
    assert [seq for seq, _stream, _message in lines] == list(range(1, killed + 32))
    log = log_of(result.id)
    assert (log.attempts, log.lines, log.dropped, log.worker) == (
        2,
        killed + 31,
        0,
        second.nodename,
    )
