"""The green pools (gevent, eventlet) in real Celery workers on PostgreSQL and Redis: greenlets a
task spawns, and descriptor capture refused. Their isolation and order are tested beside the
other pools' in test_capture_worker."""

from __future__ import annotations

import pytest
from celery import states
from django.db import connection

from tests import harness, tasks
from tests.test_capture_worker import UNCAPPED
from tests.utils import messages

pytestmark = pytest.mark.integration

GREEN_POOLS = ["gevent", "eventlet"]


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
