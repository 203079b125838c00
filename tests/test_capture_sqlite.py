"""SQLite as the demo runs it: two worker processes, four threads each, write one database file
at once (timeout and IMMEDIATE transactions, tests/settings.py) through the one-statement insert
of tasklog/capture/bulk.py. Every line is stored once, in order, in its own task's log."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests import tasks
from tests.harness import ROOT
from tests.test_capture_worker import expected_numbered

pytestmark = pytest.mark.integration

TASKS, LINES = 8, 2000


@pytest.fixture
def sqlite_file(tmp_path) -> str:
    """A migrated SQLite database file the workers are pointed at."""
    path = str(tmp_path / "tasklog.sqlite3")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--settings=tests.settings", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return path


def test_two_worker_processes_share_one_sqlite_file_without_losing_a_line(
    worker_factory, sqlite_file
):
    env = {"DATABASE_URL": f"sqlite:///{sqlite_file}", "TASKLOG_WORKER_DATABASE_NAME": sqlite_file}
    env["CELERY_TASKLOG_MAX_LINES"] = "0"
    workers = [worker_factory(pool="threads", concurrency=4, env=env) for _ in range(2)]

    ids = [tasks.print_numbered.delay(f"task{index}", LINES).id for index in range(TASKS)]

    database = sqlite3.connect(sqlite_file, timeout=30)
    deadline = time.monotonic() + 120
    while finished(database, ids) < TASKS:
        if time.monotonic() > deadline:
            pytest.fail("workers' output:\n" + "\n".join(w.output()[-3000:] for w in workers))
        time.sleep(0.2)
    for index, task_id in enumerate(ids):
        rows = database.execute(
            "SELECT seq, message FROM tasklog_tasklogline WHERE task_id = ? ORDER BY seq",
            [task_id],
        ).fetchall()
        assert [seq for seq, _message in rows] == list(range(1, LINES + 1))
        assert [message for _seq, message in rows] == expected_numbered(f"task{index}", LINES)
    assert not any("database is locked" in worker.output() for worker in workers)


def finished(database: sqlite3.Connection, ids: list[str]) -> int:
    marks = ", ".join("?" for _ in ids)
    query = (
        f"SELECT COUNT(*) FROM tasklog_tasklog WHERE finished IS NOT NULL AND task_id IN ({marks})"
    )
    return database.execute(query, ids).fetchone()[0]
