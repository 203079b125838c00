"""A task's capture never touches the caller's connection or transaction, however it is called.

Issue 11.1: with ``task_cls="tasklog.tasks:TerminalLoggingTask"`` a direct call inside
``transaction.atomic()`` closed the caller's connection and lost its transaction, and an eager
run wrote its log inside the caller's transaction (a rollback lost the log). Every way of
calling a task, on PostgreSQL (the suite's ``default`` under ``make test``) and on a SQLite file.
"""

from __future__ import annotations

import time

import pytest
from celery import Celery
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connections, transaction

from tasklog.models import TaskLog
from tests import harness, tasks
from tests.utils import messages

SQLITE = "tasklog_sqlite"
ALIASES = ["default", SQLITE]
WAYS = ["direct", "apply", "always_eager", "nested"]
CAPTURED_WAYS = ["apply", "always_eager", "nested"]

# Never the current app: the shared tasks of other test modules would bind to it.
app = Celery("transactions", task_cls="tasklog.tasks:TerminalLoggingTask", set_as_current=False)


@app.task(bind=True)
def report(self, group: str, alias: str) -> bool:
    """Print, and say whether the caller's uncommitted row is visible (it must be)."""
    print(f"report for {group}")
    return Group.objects.using(alias).filter(name=group).exists()


@app.task(bind=True)
def outer(self, group: str, alias: str) -> list:
    """An eager run that calls another task directly and eagerly."""
    print("outer before")
    direct = report(group, alias)
    inner = report.apply(args=(group, alias))
    print("outer after")
    return [direct, inner.get(), inner.id]


@pytest.fixture(scope="module", autouse=True)
def sqlite_alias(tmp_path_factory, django_db_setup, django_db_blocker):
    """A SQLite file database with the project's tables, as the recommended SQLite setup has it
    (``transaction_mode`` IMMEDIATE and a busy timeout, see docs/usage.md). Module-scoped, so it
    exists before pytest-django checks each test's ``databases``."""
    path = tmp_path_factory.mktemp("sqlite") / "tasklog.sqlite3"
    config = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        "TEST": {"NAME": str(path)},
    }
    django_settings.DATABASES[SQLITE] = config
    connections.settings[SQLITE] = connections.configure_settings(
        {"default": connections.settings["default"], SQLITE: dict(config)}
    )[SQLITE]
    with django_db_blocker.unblock():
        call_command("migrate", database=SQLITE, verbosity=0)
    yield SQLITE
    connections[SQLITE].close()
    del connections[SQLITE]
    del connections.settings[SQLITE]
    django_settings.DATABASES.pop(SQLITE, None)


@pytest.fixture(params=ALIASES)
def alias(request, settings):
    """The database that holds both the caller's rows and the logs."""
    name = request.param
    settings.CELERY_TASKLOG_DATABASE = name
    return name


def call(way: str, group: str, alias: str) -> list[str]:
    """Call ``report`` (or ``outer``) the given way; returns the ids of the logs it made."""
    if way == "direct":
        assert report(group, alias) is True
        return []
    if way == "apply":
        result = report.apply(args=(group, alias))
        assert result.get() is True
        return [result.id]
    if way == "always_eager":
        app.conf.task_always_eager = True
        try:
            result = report.delay(group, alias)
        finally:
            app.conf.task_always_eager = False
        assert result.get() is True
        return [result.id]
    result = outer.apply(args=(group, alias))
    direct, inner, inner_id = result.get()
    assert (direct, inner) == (True, True)
    return [result.id, inner_id]


def expected_log(way: str, group: str) -> list[list[str]]:
    if way == "nested":
        return [["outer before", f"report for {group}", "outer after"], [f"report for {group}"]]
    return [[f"report for {group}"]]


def wait_for_logs(task_ids: list[str], alias: str) -> None:
    """The flusher stores a run started inside the caller's transaction on its own connection;
    on SQLite only once the caller's transaction let go of the one write lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if TaskLog.objects.using(alias).finished().filter(task_id__in=task_ids).count() == len(
            task_ids
        ):
            return
        time.sleep(0.05)
    pytest.fail(f"logs {task_ids} not finished within 20 s", pytrace=False)


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
@pytest.mark.parametrize("way", WAYS)
def test_a_task_called_inside_the_callers_transaction_leaves_it_intact(alias, way, capsys):
    with transaction.atomic(using=alias):
        Group.objects.using(alias).create(name="kept")
        task_ids = call(way, "kept", alias)
        # The caller's connection is open and its transaction alive: it reads its own row.
        assert Group.objects.using(alias).filter(name="kept").exists()
        assert not connections[alias].needs_rollback

    assert Group.objects.using(alias).filter(name="kept").exists(), "the caller's row committed"
    if way == "direct":
        assert "report for kept" in capsys.readouterr().out  # not captured: no request id
        return
    wait_for_logs(task_ids, alias)
    for task_id, lines in zip(task_ids, expected_log(way, "kept"), strict=True):
        assert messages(task_id) == lines


class CallerRollsBack(Exception):
    pass


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
@pytest.mark.parametrize("way", CAPTURED_WAYS)
def test_the_log_survives_a_rollback_of_the_callers_transaction(alias, way):
    task_ids = []
    with pytest.raises(CallerRollsBack), transaction.atomic(using=alias):
        Group.objects.using(alias).create(name="rolled back")
        task_ids += call(way, "rolled back", alias)
        raise CallerRollsBack

    assert not Group.objects.using(alias).filter(name="rolled back").exists()
    wait_for_logs(task_ids, alias)
    for task_id, lines in zip(task_ids, expected_log(way, "rolled back"), strict=True):
        assert messages(task_id) == lines


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_a_failing_log_write_does_not_break_the_callers_transaction(alias, monkeypatch):
    from tasklog.capture import storage

    def refuse(*args):
        raise storage.OperationalError("the log database is away")

    monkeypatch.setattr(storage, "open_run", refuse)
    with transaction.atomic(using=alias):
        Group.objects.using(alias).create(name="despite the log")
        assert report.apply(args=("despite the log", alias)).get() is True
        assert Group.objects.using(alias).filter(name="despite the log").exists()

    assert Group.objects.using(alias).filter(name="despite the log").exists()


@pytest.mark.django_db(transaction=True, databases=["default", SQLITE])
def test_an_eager_run_outside_a_transaction_is_stored_before_it_returns(alias):
    result = report.apply(args=("none", alias))

    assert result.get() is False
    assert messages(result.id) == ["report for none"]  # no waiting: written on this thread


@pytest.mark.integration
def test_a_task_in_a_worker_calling_tasks_inside_its_own_transaction_keeps_it(worker_factory):
    worker = worker_factory(pool="prefork", concurrency=1)

    result = tasks.call_tasks_in_a_transaction.delay("worker group")

    record = harness.wait_for_task_result(result.id, worker=worker)
    assert record.status == "SUCCESS", worker.output()
    assert Group.objects.filter(name="worker group").exists()
    inner_id = result.get(timeout=10)
    assert messages(result.id) == ["before", "direct 1 out", "after"]
    assert messages(inner_id) == ["eager 1 out"]
