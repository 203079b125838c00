"""``end`` is the last event and no line is missing before it, whichever way a task is captured.

With ``CELERY_TASKLOG_ALL_TASKS`` Celery stores the final state before the capture's last
flush (the log closes in ``task_postrun``), and a slow database widens that gap: a stream that
ended on the state alone lost lines. The test holds a write lock on the lines table while the
task ends, as a database hiccup would, and lets go a moment after the final state is stored.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import connection, transaction

from tasklog import sse
from tests import harness
from tests.test_sse import kinds, parse_events, seqs

pytestmark = pytest.mark.integration
LINES = 900  # under CELERY_TASKLOG_MAX_LINES, so seqs have no gap


def follow_to_the_end(task_id: str) -> list[dict]:
    async def run():
        chunks = [chunk async for chunk in sse.follow_task(task_id, 0, poll_interval=0.01)]
        return parse_events("".join(chunks))

    return async_to_sync(run)()


@contextmanager
def lines_table_locked():
    """Writes to the lines table wait (reads do not) until the block is left."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE tasklog_tasklogline IN EXCLUSIVE MODE")
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.postgresql  # LOCK TABLE ... IN EXCLUSIVE MODE (writes wait, reads do not)
def test_sse_and_follow_wait_for_the_last_lines_under_all_tasks(worker_factory):
    from tests.tasks import plain_burst

    worker = worker_factory(env={"CELERY_TASKLOG_ALL_TASKS": "true"})
    with ThreadPoolExecutor(max_workers=1) as pool:
        with lines_table_locked():
            task_id = plain_burst.delay(LINES).id
            events = pool.submit(follow_to_the_end, task_id)
            harness.wait_for_task_result(task_id, worker=worker)
            time.sleep(1)  # the final state is stored and read; the lines are not
        events = events.result(timeout=60)

    assert seqs(events) == list(range(1, LINES + 1))
    assert kinds(events)[-1] == "end"
    out = StringIO()
    call_command("tasklog_follow", task_id, stdout=out, stderr=StringIO())
    assert out.getvalue().splitlines()[-1] == f"burst {LINES}"
