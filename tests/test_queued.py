"""A captured task is known from the moment ``delay()`` returns: queued, then live.

The publish hook records the row (``tasklog.queued``); the worker's first start of it is
attempt 1; a task revoked, expired or never taken ends closed with a marker saying so.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from celery import states
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from tasklog.checks import check_settings
from tasklog.models import Stream, TaskLog
from tasklog.queued import record_queued, release_connection
from tasklog.results import QUEUED, effective_state
from tasklog.serializers import task_as_dict
from tasklog.tasks import prune_task_logs
from tests import harness, tasks
from tests.utils import stored, wait_for

QUEUE = "celery"


@pytest.fixture(autouse=True, scope="module")
def _helper_connection_closed():
    """Publications inside a transaction keep the helper thread's connection open."""
    yield
    release_connection()


def publish_headers(task_id: str, task: str = "tests.tasks.print_numbered") -> dict:
    return {"id": task_id, "task": task}


# --- Through a real broker (Redis) and PostgreSQL -------------------------------------------


@pytest.mark.integration
def test_delay_returns_with_the_task_known_as_queued(transactional_db, celery_app, reader):
    result = tasks.print_numbered.delay("queued", 2)

    log = TaskLog.objects.get(task_id=result.id)
    assert (log.queue, log.started, log.finished, log.attempts) == (QUEUE, None, None, 1)
    assert log.task_name == "tests.tasks.print_numbered"
    assert log.queued is not None and log.last_seen == log.queued
    task = reader.get(f"/tasklog/{result.id}/lines/").json()["task"]
    assert (task["state"], task["complete"], task["queue"]) == (QUEUED, False, QUEUE)
    assert task["queued"] == log.queued.isoformat()
    assert (task["started"], task["queue_wait"]) == (None, None)
    page = reader.get(f"/tasklog/{result.id}/")
    assert page.status_code == 200
    assert b"Waiting in queue" in page.content


@pytest.mark.integration
def test_follow_and_show_say_the_task_waits_in_its_queue(transactional_db, celery_app):
    result = tasks.print_numbered.delay("queued", 2)
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as timed_out:
        call_command("tasklog_follow", result.id, "--timeout=0.3", stdout=out, stderr=err)
    call_command("tasklog_show", result.id, stdout=out)

    assert timed_out.value.returncode == 2
    assert f"Task {result.id}: Waiting in queue celery since " in err.getvalue()
    assert "QUEUED" in out.getvalue()
    assert "Queued" in out.getvalue() and "(celery)" in out.getvalue()


@pytest.mark.integration
def test_a_rollback_of_the_publisher_keeps_the_queued_row_and_its_transaction_works(
    transactional_db, celery_app
):
    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), transaction.atomic():
        task_id = tasks.print_numbered.delay("in a transaction", 1).id
        assert TaskLog.objects.filter(task_id=task_id).count() == 1  # the caller's work goes on
        raise RolledBack

    assert TaskLog.objects.get(task_id=task_id).queue == QUEUE
    assert not connection.in_atomic_block


@pytest.mark.integration
def test_only_captured_tasks_are_recorded(transactional_db, celery_app, settings):
    plain = tasks.plain_task.delay()
    settings.CELERY_TASKLOG_RECORD_QUEUED = False
    switched_off = tasks.print_numbered.delay("off", 1)
    settings.CELERY_TASKLOG_RECORD_QUEUED = True
    settings.CELERY_TASKLOG_ALL_TASKS = True
    everything = tasks.plain_task.delay()

    assert not TaskLog.objects.filter(task_id__in=[plain.id, switched_off.id]).exists()
    assert TaskLog.objects.get(task_id=everything.id).queue == QUEUE


@pytest.mark.integration
def test_a_queued_task_started_by_a_late_worker_is_attempt_1_and_shows_its_wait(worker_factory):
    result = tasks.print_numbered.delay("late", 2)
    queued = TaskLog.objects.get(task_id=result.id)

    worker = worker_factory(concurrency=1)

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS
    log = TaskLog.objects.get(task_id=result.id)
    assert (log.attempts, log.queued, log.queue) == (1, queued.queued, QUEUE)
    assert log.started >= log.queued and log.queue_wait == log.started - log.queued
    assert stored(result.id) == [
        (1, Stream.STDOUT, "late 1 out"),
        (2, Stream.LOG, "late 2 log"),
    ]


@pytest.mark.integration
@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_a_task_revoked_or_expired_in_its_queue_ends_as_never_started(worker_factory, how):
    worker = worker_factory(concurrency=1)
    busy = tasks.print_numbered.delay("busy", 1, 2.0)  # the only worker process is busy
    if how == "revoked":
        result = tasks.print_numbered.delay("never", 1)
        assert TaskLog.objects.get(task_id=result.id).is_queued
        result.revoke()
    else:
        result = tasks.print_numbered.apply_async(("never", 1), expires=timezone.now())

    assert harness.wait_for_task_result(result.id, worker=worker).status == states.REVOKED
    assert harness.wait_for_task_result(busy.id, worker=worker).status == states.SUCCESS
    # Celery stores REVOKED before it sends task_revoked, whose handler ends the log.
    ended = TaskLog.objects.filter(task_id=result.id, finished__isnull=False)
    log = wait_for(ended.first)
    assert (log.started, log.interrupted) == (None, False)
    why = "Revoked" if how == "revoked" else "Expired"
    assert stored(result.id) == [
        (1, Stream.MARKER, f"{why} while waiting in queue celery: the task never started.")
    ]


# --- The hook, the sweep and the readers ----------------------------------------------------


@pytest.mark.django_db
def test_the_first_start_of_a_queued_row_is_attempt_1_without_a_marker():
    queued_at = timezone.now() - timedelta(seconds=3)
    TaskLog.objects.create(task_id="waited", queued=queued_at, queue="q", last_seen=queued_at)

    tasks.print_numbered.apply(("waited", 1), task_id="waited")

    log = TaskLog.objects.get(task_id="waited")
    assert (log.attempts, log.queue, log.queued) == (1, "q", queued_at)
    assert log.queue_wait >= timedelta(seconds=3)
    assert stored("waited") == [(1, Stream.STDOUT, "waited 1 out")]
    assert effective_state(log, None) == "FINISHED"


@pytest.mark.django_db
def test_a_publication_of_a_started_task_changes_nothing():
    record_queued(headers=publish_headers("started"), routing_key="first")
    tasks.print_numbered.apply(("started", 1), task_id="started")
    before = TaskLog.objects.get(task_id="started")

    record_queued(headers=publish_headers("started"), routing_key="again")

    after = TaskLog.objects.get(task_id="started")
    assert (after.queue, after.started, after.attempts) == ("first", before.started, 1)


@pytest.mark.django_db
def test_a_queued_row_reads_as_queued_and_incomplete():
    record_queued(headers=publish_headers("waiting"), routing_key="reports")
    log = TaskLog.objects.get(task_id="waiting")

    task = task_as_dict(log, None)

    assert (task["state"], task["complete"], task["interrupted"]) == (QUEUED, False, False)
    assert (task["queue"], task["started"], task["duration"]) == ("reports", None, None)


@pytest.mark.django_db
def test_a_long_queued_row_is_not_taken_for_a_dead_worker(settings):
    settings.CELERY_TASKLOG_STALE_AFTER = 1
    long_ago = timezone.now() - timedelta(hours=1)
    TaskLog.objects.create(task_id="patient", queued=long_ago, queue="q", last_seen=long_ago)

    log = TaskLog.objects.get(task_id="patient")

    assert effective_state(log, None) == QUEUED
    assert prune_task_logs.apply().get()["interrupted"] == 0


@pytest.mark.django_db
def test_the_sweep_closes_tasks_no_worker_took_within_the_queue_timeout(settings):
    settings.CELERY_TASKLOG_QUEUE_TIMEOUT = 3600
    now = timezone.now()
    for task_id, age in (("lost", 2), ("recent", 0.5)):
        queued = now - timedelta(hours=age)
        TaskLog.objects.create(task_id=task_id, queued=queued, queue="gone", last_seen=queued)

    assert prune_task_logs.apply().get()["never_started"] == 1

    lost = TaskLog.objects.get(task_id="lost")
    assert (lost.interrupted, lost.finished is not None, lost.started) == (True, True, None)
    assert effective_state(lost, None) == "INTERRUPTED"
    [(_seq, _stream, message)] = stored("lost")
    assert message.startswith("Never started: waiting in queue gone since ")
    assert TaskLog.objects.get(task_id="recent").is_queued
    settings.CELERY_TASKLOG_QUEUE_TIMEOUT = 0
    assert prune_task_logs.apply().get()["never_started"] == 0


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("RECORD_QUEUED", "sometimes", "tasklog.E001"),
        ("QUEUE_TIMEOUT", "soon", "tasklog.E002"),
        ("QUEUE_TIMEOUT", -1, "tasklog.E003"),
    ],
)
def test_bad_queued_settings_are_check_errors(settings, name, value, check_id):
    setattr(settings, f"CELERY_TASKLOG_{name}", value)

    assert [error.id for error in check_settings()] == [check_id]


# --- Hostile publications -------------------------------------------------------------------


@pytest.mark.abuse
@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"id": "x" * 256, "task": "tests.tasks.print_numbered"},
        {"id": None, "task": "tests.tasks.print_numbered"},
        {"id": ["not", "a", "string"], "task": "tests.tasks.print_numbered"},
        {"task": "tests.tasks.print_numbered"},
        {"id": "unknown-task", "task": "no.such.task"},
        {"id": "no-name", "task": None},
        {"id": "unhashable-name", "task": ["tests.tasks.print_numbered"]},
    ],
)
def test_malformed_publications_record_nothing_and_raise_nothing(headers):
    record_queued(headers=headers, routing_key="q")

    assert not TaskLog.objects.exists()


@pytest.mark.abuse
@pytest.mark.django_db
def test_huge_queue_names_and_origins_are_cut_to_their_columns():
    headers = publish_headers("é" * 255) | {"tasklog_origin": {"from": "/" + "é" * 5000}}

    record_queued(headers=headers, routing_key="q" * 10_000, exchange="x" * 10_000)

    log = TaskLog.objects.get()
    assert (len(log.task_id), len(log.queue), len(log.launched_from)) == (255, 255, 255)


@pytest.mark.abuse
@pytest.mark.integration
@pytest.mark.postgresql  # the refused row: PostgreSQL refuses NUL in text, MariaDB stores it
def test_a_row_the_database_refuses_never_fails_the_publisher(transactional_db, caplog):
    record_queued(headers=publish_headers("nul\x00byte"), routing_key="q")  # PostgreSQL: no NUL

    with transaction.atomic():  # inside the caller's transaction: on the helper's connection
        record_queued(headers=publish_headers("nul\x00again"), routing_key="q")
        assert TaskLog.objects.count() == 0  # the caller's transaction still works

    assert "not recorded as queued" in caplog.text


@pytest.mark.abuse
@pytest.mark.integration
def test_concurrent_publications_of_one_id_make_one_row(transactional_db):
    barrier = threading.Barrier(8)

    def publish(queue: str) -> None:
        barrier.wait()
        try:
            record_queued(headers=publish_headers("contended"), routing_key=queue)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish, args=(f"q{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert TaskLog.objects.filter(task_id="contended").count() == 1


@pytest.mark.integration
def test_a_task_published_from_async_code_is_recorded(transactional_db, celery_app):
    import asyncio

    async def publish_from_a_coroutine() -> str:
        return tasks.print_numbered.delay("async", 1).id

    task_id = asyncio.run(publish_from_a_coroutine())

    assert TaskLog.objects.get(task_id=task_id).is_queued


@pytest.mark.django_db
def test_the_admin_lists_and_filters_queued_tasks(admin_client):
    record_queued(headers=publish_headers("in-the-queue"), routing_key="reports")
    tasks.print_numbered.apply(("ran", 1), task_id="ran")

    everything = admin_client.get("/admin/tasklog/tasklog/")
    queued = admin_client.get("/admin/tasklog/tasklog/", {"state": QUEUED})
    detail = admin_client.get(
        f"/admin/tasklog/tasklog/{TaskLog.objects.get(task_id='in-the-queue').pk}/change/"
    )

    assert everything.status_code == queued.status_code == detail.status_code == 200
    assert [log.task_id for log in queued.context["cl"].result_list] == ["in-the-queue"]
    assert f'<td class="field-state">{QUEUED}</td>' in everything.content.decode()
    assert "reports" in detail.content.decode()


@pytest.mark.django_db
def test_a_worker_running_the_previous_version_can_still_open_its_run():
    """During a rolling upgrade old workers insert rows without the new columns."""
    names = (
        "task_id task_name worker started last_seen attempts lines dropped truncated interrupted "
        "launched_by launched_by_user_id launched_from"
    )
    columns = ", ".join(map(connection.ops.quote_name, names.split()))  # LINES is reserved
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO tasklog_tasklog ({columns}) "
            "VALUES ('old-worker', 'task', 'w', %s, %s, 1, 0, 0, %s, %s, '', '', '')",
            [timezone.now(), timezone.now(), False, False],
        )

    log = TaskLog.objects.get(task_id="old-worker")
    assert (log.queue, log.queued, log.is_running) == ("", None, True)


@pytest.mark.integration
def test_a_forked_child_records_its_publications(transactional_db, celery_app):
    """Prefork workers and preforking web servers fork after the parent used the helper."""
    import os

    record_queued(headers=publish_headers("from-the-parent"), routing_key="q")
    connection.close()  # the child must not share the parent's socket
    release_connection()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through its exit status)
        try:
            record_queued(headers=publish_headers("from-the-child"), routing_key="q")
            recorded = TaskLog.objects.filter(task_id="from-the-child").exists()
        finally:
            os._exit(0 if recorded else 1)
    _pid, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert TaskLog.objects.filter(task_id__startswith="from-the-").count() == 2
