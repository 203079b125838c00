"""How a run that did not end by itself is explained: revoked and terminated, or its process
killed (issue 11.6); and a disabled app does no database work on revoke (10, docs)."""

from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest
from celery import states

from tasklog.models import TaskLog
from tasklog.signals import close_revoked_run
from tests import harness, tasks
from tests.rows import make_log
from tests.utils import stored, wait_for


def running_log(task_id: str, lines: int = 2) -> TaskLog:
    return make_log(task_id, rows=[f"line {n}" for n in range(1, lines + 1)], finished=None)


@pytest.mark.django_db
def test_a_disabled_app_does_no_database_work_when_a_task_is_revoked(
    settings, django_assert_num_queries
):
    running_log("revoked-while-disabled")
    settings.CELERY_TASKLOG_ENABLED = False

    with django_assert_num_queries(0):
        close_revoked_run(request=SimpleNamespace(id="revoked-while-disabled"), terminated=True)

    assert TaskLog.objects.get(task_id="revoked-while-disabled").finished is None


@pytest.mark.django_db
@pytest.mark.parametrize(("signum", "name"), [(15, "SIGTERM"), (9, "SIGKILL"), (None, "a signal")])
def test_a_terminated_run_ends_with_a_marker_naming_the_signal(signum, name):
    running_log("terminated")

    close_revoked_run(request=SimpleNamespace(id="terminated"), terminated=True, signum=signum)

    log = TaskLog.objects.get(task_id="terminated")
    assert stored("terminated")[-1] == (
        3,
        "marker",
        f"Revoked: the task was terminated with {name}.",
    )
    assert (log.lines, log.finished is not None, log.interrupted) == (3, True, False)


@pytest.mark.django_db
def test_the_sweep_ends_each_interrupted_run_with_a_marker_at_its_next_seq():
    running_log("silent-1", lines=2)
    running_log("silent-2", lines=5)
    make_log("finished-long-ago", rows=["done"])

    closed = TaskLog.objects.stale(seconds=60).mark_interrupted()

    assert closed == 2
    for task_id, lines in (("silent-1", 2), ("silent-2", 5)):
        log = TaskLog.objects.get(task_id=task_id)
        seq, stream, message = stored(task_id)[-1]
        assert (seq, stream, log.lines, log.interrupted) == (lines + 1, "marker", lines + 1, True)
        assert message.startswith("Interrupted: nothing heard from the worker since 2024-05-01 ")
    assert stored("finished-long-ago") == [(1, "stdout", "done")]


def wait_until_printing(result, lines: int = 5) -> None:
    wait_for(lambda: len(stored(result.id)) >= lines)


@pytest.mark.integration
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_revoke_with_terminate_stores_a_marker_not_a_system_exit(
    worker_factory, celery_app, signal_name
):
    worker = worker_factory(pool="prefork", concurrency=1)
    result = tasks.print_slowly.delay(600, 0.05)
    wait_until_printing(result)

    celery_app.control.revoke(result.id, terminate=True, signal=signal_name)

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.REVOKED
    marker = ("marker", f"Revoked: the task was terminated with {signal_name}.")
    wait_for(lambda: marker in [line[1:] for line in stored(result.id)])
    time.sleep(1.0)  # a SIGTERM'd process stores its last lines as it goes
    lines = stored(result.id)
    assert not any("SystemExit" in message for _seq, _stream, message in lines)
    assert [seq for seq, _stream, _message in lines] == list(range(1, len(lines) + 1))
    if signal_name == "SIGTERM":
        assert ("marker", "Attempt ended: the worker process received SIGTERM.") in [
            line[1:] for line in lines
        ]
    assert TaskLog.objects.get(task_id=result.id).finished is not None


@pytest.mark.integration
def test_a_pool_process_killed_mid_task_gets_a_marker_from_the_sweep(worker_factory, celery_app):
    worker = worker_factory(pool="prefork", concurrency=1)
    result = tasks.print_slowly.delay(600, 0.05)
    wait_until_printing(result)
    active = celery_app.control.inspect(destination=[worker.nodename], timeout=5).active()
    [child_pid] = [task["worker_pid"] for task in active[worker.nodename]]

    os.kill(child_pid, signal.SIGKILL)

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.FAILURE
    lines_before = len(stored(result.id))
    time.sleep(1.1)
    assert TaskLog.objects.stale(seconds=1).filter(task_id=result.id).mark_interrupted() == 1
    lines = stored(result.id)
    assert lines[-1][:2] == (lines_before + 1, "marker")
    assert lines[-1][2].startswith("Interrupted: nothing heard from the worker since ")
    assert TaskLog.objects.get(task_id=result.id).interrupted
