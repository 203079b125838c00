"""The green pools (gevent, eventlet) in real Celery workers on PostgreSQL and Redis: the same
isolation and order as the threads and prefork pools, and greenlets a task spawns."""

from __future__ import annotations

import pytest
from celery import states
from django.db import connection

from tests import harness, tasks
from tests.test_capture_worker import UNCAPPED, expected_numbered
from tests.utils import log_of, messages, stored

pytestmark = pytest.mark.integration

GREEN_POOLS = ["gevent", "eventlet"]
# A buffer smaller than one task's output: a task that never yields must still let the flusher
# (a greenlet too, under monkey-patching) store its lines instead of dropping them.
SMALL_BUFFER = {**UNCAPPED, "CELERY_TASKLOG_BUFFER_LINES": "50", "CELERY_TASKLOG_BATCH_SIZE": "20"}


@pytest.mark.parametrize("pool", GREEN_POOLS)
def test_eight_concurrent_tasks_store_every_line_once_in_its_own_log(worker_factory, pool):
    worker = worker_factory(pool=pool, concurrency=8, env=SMALL_BUFFER)

    results = [tasks.print_numbered.delay(f"task{index}", 2000) for index in range(8)]

    for index, result in enumerate(results):
        assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
        lines = stored(result.id)
        assert [message for _seq, _stream, message in lines] == expected_numbered(
            f"task{index}", 2000
        )
        assert [seq for seq, _stream, _message in lines] == list(range(1, 2001))
        log = log_of(result.id)
        assert (log.lines, log.dropped, log.finished is not None) == (2000, 0, True)


@pytest.mark.parametrize("pool", GREEN_POOLS)
def test_greenlets_a_task_spawns_write_to_its_log(worker_factory, pool):
    worker = worker_factory(pool=pool, concurrency=4, env=UNCAPPED)

    results = [tasks.print_from_greenlets.delay(pool, f"task{index}", 3, 200) for index in range(4)]

    for index, result in enumerate(results):
        assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
        lines = messages(result.id)
        assert len(lines) == 600
        for greenlet in range(3):
            prefix = f"task{index} greenlet {greenlet} line "
            assert [line for line in lines if line.startswith(prefix)] == [
                f"{prefix}{number}" for number in range(1, 201)
            ]


@pytest.mark.parametrize(
    ("pool", "env", "named"),
    [
        ("gevent", {}, "gevent"),
        ("eventlet", {}, "eventlet"),
        (
            "custom",
            {"CELERY_CUSTOM_WORKER_POOL": "tests.custom_pools:InstrumentedGeventPool"},
            "gevent",
        ),
    ],
)
def test_a_green_worker_refuses_descriptor_capture_naming_its_pool(
    transactional_db, pool, env, named
):
    env = {**env, "CELERY_TASKLOG_CAPTURE_FD": "true"}

    finished = harness.run_worker_until_it_exits(connection.settings_dict["NAME"], pool, env)

    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "tasklog.E006" in output
    assert f"CELERY_TASKLOG_CAPTURE_FD=True cannot be used with the {named!r} pool" in output
