"""``CELERY_TASKLOG_PUSH``: its values, its checks (E050-E052), and polling where push is off."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection

from tasklog import push, sse
from tasklog.checks import check_settings
from tests.logs import TASK_ID, add_lines, close_log, make_log, make_result
from tests.test_sse import kinds, parse_events, seqs


@pytest.mark.parametrize(
    ("value", "parsed"),
    [(None, None), ("auto", None), (" AUTO ", None), (True, True), ("on", True), ("0", False)],
)
def test_push_takes_true_false_or_automatic(settings, value, parsed):
    settings.CELERY_TASKLOG_PUSH = value
    assert check_settings() == []
    assert push.settings.PUSH is parsed


@pytest.mark.abuse
@pytest.mark.parametrize(
    "value", ["maybe", 2, 1.5, [], "x" * 10_000, "ön", "'; NOTIFY tasklog; --", float("nan")]
)
def test_a_bad_push_value_is_e050_and_push_falls_back_to_automatic(settings, value):
    settings.CELERY_TASKLOG_PUSH = value

    [error] = check_settings()

    assert error.id == "tasklog.E050"
    assert "CELERY_TASKLOG_PUSH must be True, False or None (automatic)" in error.msg
    assert len(error.msg) < 200
    assert push.settings.PUSH is None


def test_push_asked_for_on_sqlite_is_e051(settings):
    settings.CELERY_TASKLOG_PUSH = True
    settings.CELERY_TASKLOG_DATABASE = "sqlite"

    [error] = push.check_push()

    assert error.id == "tasklog.E051"
    assert "needs PostgreSQL" in error.msg and "'sqlite' is sqlite" in error.msg


@pytest.mark.postgresql
def test_push_asked_for_with_psycopg2_or_psycopg_3_1_is_e052(settings, monkeypatch):
    settings.CELERY_TASKLOG_PUSH = True
    monkeypatch.setattr(push, "psycopg_can_listen", lambda: False)

    [error] = push.check_push()

    assert error.id == "tasklog.E052"
    assert not push.is_on()


@pytest.mark.parametrize("value", [None, False])
def test_no_check_error_when_push_is_automatic_or_off(settings, value):
    settings.CELERY_TASKLOG_PUSH = value
    settings.CELERY_TASKLOG_DATABASE = "sqlite"
    assert push.check_push() == []


def test_sqlite_and_push_off_have_no_listener(settings):
    settings.CELERY_TASKLOG_DATABASE = "sqlite"
    assert push.listener() is None
    settings.CELERY_TASKLOG_DATABASE = "default"
    settings.CELERY_TASKLOG_PUSH = False
    assert push.listener() is None


@pytest.mark.django_db(databases=["default", "sqlite"], transaction=True)
def test_a_stream_on_sqlite_still_polls(settings):
    """No NOTIFY on SQLite: a line written behind the stream's back arrives by polling."""
    settings.CELERY_TASKLOG_DATABASE = "sqlite"
    settings.DATABASE_ROUTERS = ["tasklog.routers.TaskLogRouter"]
    make_log(messages=["one"])
    make_result(status="STARTED")
    script = [
        lambda: None,
        lambda: add_lines(TASK_ID, ["two"]),
        lambda: (close_log(), make_result_final()),
        lambda: None,
    ]

    async def run():
        chunks = []
        async for chunk in sse.follow_task(TASK_ID, 0, poll_interval=0.01, recheck_interval=3600):
            chunks.append(chunk)
            await sync_to_async(script.pop(0) if script else lambda: None)()
        return parse_events("".join(chunks))

    events = async_to_sync(run)()
    assert seqs(events) == [1, 2]
    assert kinds(events)[-1] == "end"
    assert push.listener() is None


def make_result_final() -> None:
    from django_celery_results.models import TaskResult

    TaskResult.objects.filter(task_id=TASK_ID).update(status="SUCCESS")


@pytest.mark.postgresql
@pytest.mark.django_db
def test_push_is_on_by_default_with_postgresql():
    assert connection.vendor == "postgresql"
    assert push.is_on()
