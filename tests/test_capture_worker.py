"""The capture engine in real Celery workers on PostgreSQL (or MariaDB) and Redis."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time

import psycopg
import pytest
from celery import states
from django.conf import settings
from django.db import connection

from tasklog.models import TaskLog
from tests import harness, tasks
from tests.utils import RETRIES_IN_ORDER, log_of, messages, retried_twice_log, stored, wait_for

pytestmark = pytest.mark.integration

UNCAPPED = {"CELERY_TASKLOG_MAX_LINES": "0"}
# A buffer smaller than one task's output: under gevent and eventlet a task that never yields
# must still let the flusher (a greenlet too) store its lines instead of dropping them.
SMALL_BUFFER = {**UNCAPPED, "CELERY_TASKLOG_BUFFER_LINES": "50", "CELERY_TASKLOG_BATCH_SIZE": "20"}


def expected_numbered(label: str, count: int) -> list[str]:
    """What ``tasks.print_numbered`` writes, in order."""
    lines = []
    for number in range(1, count + 1):
        kind = ("err", "out", "log")[number % 3]
        lines.append(f"{label} {number} {kind}")
    return lines


@pytest.mark.parametrize(
    ("pool", "concurrency", "env"),
    [
        ("threads", 8, UNCAPPED),
        ("prefork", 4, UNCAPPED),
        ("solo", 1, UNCAPPED),
        ("gevent", 8, SMALL_BUFFER),
        ("eventlet", 8, SMALL_BUFFER),
    ],
)
def test_eight_concurrent_tasks_store_every_line_once_in_its_own_log(
    worker_factory, pool, concurrency, env
):
    worker = worker_factory(pool=pool, concurrency=concurrency, env=env)

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


def test_four_byte_characters_are_stored_as_printed(worker_factory):
    """Emoji and other characters beyond the BMP (utf8mb4 on MySQL/MariaDB), in every stream."""
    worker = worker_factory(pool="threads", concurrency=4, env=UNCAPPED)
    labels = ["🎉 party", "𝄞 clef", "😀😃😄", "ascii then 🐍"]

    results = [tasks.print_numbered.delay(label, 300) for label in labels]

    for label, result in zip(labels, results, strict=True):
        assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
        assert messages(result.id) == expected_numbered(label, 300)


def test_the_traceback_is_stored_before_the_state_turns_failure(worker_factory):
    worker = worker_factory(pool="threads", concurrency=2)

    result = tasks.fail_after_printing.delay(3)

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.FAILURE
    lines = messages(result.id)  # read the moment FAILURE is visible: no waiting
    assert lines[:3] == ["step 1", "step 2", "step 3"]
    assert lines[3] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: the task failed on purpose"


def test_a_task_retried_twice_keeps_all_three_attempts_in_one_log(worker_factory):
    worker = worker_factory(**RETRIES_IN_ORDER)

    result = tasks.retry_twice.delay()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    log = log_of(result.id)
    assert stored(result.id) == retried_twice_log(log.worker)
    assert (log.attempts, log.lines, log.dropped) == (3, 10, 0)


def test_bad_input_is_stored_on_postgresql(worker_factory):
    worker = worker_factory(pool="prefork", concurrency=1)

    result = tasks.print_bad_input.delay()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    lines = messages(result.id)
    assert lines[0] == "nul\ufffdbyte"
    assert lines[1] == "invalid \ufffd\ufffd utf-8"
    binary_end = lines.index("\x1b[31mred\x1b[0m")
    assert "\x00" not in "".join(lines[2:binary_end])
    assert lines[binary_end:] == [
        "\x1b[31mred\x1b[0m",
        "progress 100%",
        "",
        "x" * 10_000 + " [… 190,000 characters cut]",
        "<script>alert(1)</script>",
        "unfinished last line",
    ]


def test_all_tasks_setting_captures_a_task_without_the_base_class(worker_factory):
    worker = worker_factory(pool="threads", env={"CELERY_TASKLOG_ALL_TASKS": "true"})

    result = tasks.plain_task.delay()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    wait_for(lambda: TaskLog.objects.finished().filter(task_id=result.id).exists())
    assert messages(result.id) == ["printed by a task without the tasklog base class"]


def test_descriptor_capture_stores_child_process_output(worker_factory):
    worker = worker_factory(pool="prefork", concurrency=1, env={"CELERY_TASKLOG_CAPTURE_FD": "1"})

    result = tasks.write_from_a_child_process.delay()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    assert sorted(messages(result.id)) == [
        "from a child process",
        "python print",
        "raw write to descriptor 2",
    ]


def test_without_descriptor_capture_child_output_reaches_the_worker_only(worker_factory):
    worker = worker_factory(pool="prefork", concurrency=1)

    result = tasks.write_from_a_child_process.delay()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    assert messages(result.id) == ["python print"]
    assert "from a child process" in worker.output()


FD_CAPTURE = {"CELERY_TASKLOG_CAPTURE_FD": "true"}
GEVENT_SUBCLASS = {"CELERY_CUSTOM_WORKER_POOL": "tests.custom_pools:InstrumentedGeventPool"}
REFUSED_POOL = "(tasklog.E006) CELERY_TASKLOG_CAPTURE_FD=True cannot be used with the {!r} pool"


@pytest.mark.parametrize(
    ("pool", "env", "message"),
    [
        ("threads", {"CELERY_TASKLOG_MAX_LINES": "abc"}, "(tasklog.E002) The environment variable"),
        ("threads", FD_CAPTURE, REFUSED_POOL.format("threads")),
        ("gevent", FD_CAPTURE, REFUSED_POOL.format("gevent")),
        ("eventlet", FD_CAPTURE, REFUSED_POOL.format("eventlet")),
        ("custom", {**FD_CAPTURE, **GEVENT_SUBCLASS}, REFUSED_POOL.format("gevent")),
    ],
)
def test_a_worker_with_bad_tasklog_settings_refuses_to_start(transactional_db, pool, env, message):
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", pool]
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TASKLOG_WORKER_DATABASE_NAME": connection.settings_dict["NAME"],
        **env,
    }

    finished = subprocess.run(
        command, env=worker_env, capture_output=True, text=True, timeout=60, cwd=harness.ROOT
    )

    assert finished.returncode != 0
    assert message in finished.stdout + finished.stderr


def test_a_worker_killed_mid_task_loses_at_most_the_last_flush_interval(worker_factory):
    worker = worker_factory(pool="prefork", concurrency=1)
    result = tasks.print_slowly.delay(200, 0.05)
    wait_for(lambda: len(stored(result.id)) >= 20)

    time.sleep(0.5)
    killed_at = time.time()
    worker.kill()

    lines = stored(result.id)
    assert [seq for seq, _stream, _message in lines] == list(range(1, len(lines) + 1))
    printed_at = [float(re.search(r" at ([\d.]+)$", message)[1]) for *_rest, message in lines]
    assert killed_at - printed_at[-1] < 1.0, "only the last flush interval may be lost"
    log = log_of(result.id)
    assert log.finished is None
    time.sleep(1.1)
    assert TaskLog.objects.stale(seconds=1).filter(task_id=result.id).exists()


class PostgresOutage:
    """Terminates the test database's connections and refuses new ones, as a failover would."""

    def __init__(self):
        params = connection.settings_dict
        self.database = params["NAME"]
        self.admin = psycopg.connect(
            host=params["HOST"],
            port=params["PORT"],
            user=params["USER"],
            password=params["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )

    def begin(self) -> None:
        connection.close()
        name = psycopg.sql.Identifier(self.database)
        self.admin.execute(
            psycopg.sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name)
        )
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        )

    def end(self) -> None:
        name = psycopg.sql.Identifier(self.database)
        self.admin.execute(
            psycopg.sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name)
        )

    def close(self) -> None:
        self.admin.close()


class MariaDBOutage:
    """Locks the test's account (new connections refused) and kills its other connections.

    An open connection outlives its account's lock: this one, opened first, unlocks it again.
    """

    def __init__(self):
        import MySQLdb

        params = connection.settings_dict
        self.admin = MySQLdb.connect(
            host=params["HOST"],
            port=int(params["PORT"]),
            user=params["USER"],
            password=params["PASSWORD"] or "",
            autocommit=True,
        )
        self.account = self.query("SELECT CURRENT_USER()")[0][0].replace("@", "'@'")

    def query(self, sql: str) -> tuple:
        with self.admin.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def begin(self) -> None:
        import MySQLdb

        connection.close()
        self.query(f"ALTER USER '{self.account}' ACCOUNT LOCK")
        for (connection_id,) in self.query(
            "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() "
            "AND user = SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
        ):
            with contextlib.suppress(MySQLdb.OperationalError):  # gone meanwhile
                self.query(f"KILL CONNECTION {int(connection_id)}")

    def end(self) -> None:
        self.query(f"ALTER USER '{self.account}' ACCOUNT UNLOCK")

    def close(self) -> None:
        self.admin.close()


@pytest.fixture
def outage():
    """The test database going away and coming back, on PostgreSQL or MariaDB."""
    outage = PostgresOutage() if connection.vendor == "postgresql" else MariaDBOutage()
    yield outage
    outage.end()
    outage.close()


def run_through_an_outage(worker, outage) -> TaskLog:
    """Run a 6 s task that prints every 0.1 s while the database is away for 2.5 s of it."""
    result = tasks.print_slowly.delay(60, 0.1)
    wait_for(lambda: len(stored(result.id)) >= 10)

    outage.begin()
    time.sleep(2.5)
    outage.end()

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    return wait_for(lambda: TaskLog.objects.finished().filter(task_id=result.id).first())


def test_a_database_outage_mid_task_loses_nothing_the_buffer_holds(worker_factory, outage):
    worker = worker_factory(pool="threads", concurrency=2)

    log = run_through_an_outage(worker, outage)

    lines = messages(log.task_id)
    assert [line.split(" at ")[0] for line in lines] == [f"line {n}" for n in range(1, 61)]
    assert log.dropped == 0
    assert "cannot write task logs" in worker.output()


def test_a_long_outage_drops_the_oldest_lines_and_says_so(worker_factory, outage):
    worker = worker_factory(pool="threads", concurrency=2, env={"CELERY_TASKLOG_BUFFER_LINES": "5"})

    log = run_through_an_outage(worker, outage)

    lines = stored(log.task_id)
    printed = [message.split(" at ")[0] for _seq, stream, message in lines if stream == "stdout"]
    lost = 60 - len(printed)
    assert lost > 0
    assert log.dropped == lost
    assert log.lines == 60
    missing = sorted(set(range(1, 61)) - {int(line.split()[1]) for line in printed})
    assert missing == list(range(missing[0], missing[-1] + 1)), "the oldest waiting lines go"
    [marker] = [line for line in lines if line[1] == "marker"]
    assert marker == (
        missing[0],
        "marker",
        f"{lost} lines lost while the database was unreachable or slower than the task "
        f"(seq {missing[0]} to {missing[-1]}); the worker's own output has them.",
    )
    assert all(f"line {number} at" in worker.output() for number in missing)
    assert [seq for seq, _stream, _message in lines] == sorted(
        {seq for seq, _stream, _message in lines}
    )
