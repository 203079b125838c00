"""Greenlets a task spawns under the green pools (gevent, eventlet), in real Celery workers on
PostgreSQL and Redis. Isolation, order and the refusal of descriptor capture are tested for
every pool in test_capture_worker."""

from __future__ import annotations

import pytest
from celery import states

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
