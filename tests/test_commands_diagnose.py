import json
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from celery import Celery, current_app
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasklog.diagnostics import CheckResult, run_diagnostics
from tasklog.models import Stream, TaskLog, TaskLogLine
from tasklog.schedule import PRUNE_ENTRY_NAME
from tests.rows import add_lines, make_log

pytestmark = pytest.mark.django_db

PREFORK_WORKER = {
    "celery@web1": {
        "pool": {"implementation": "celery.concurrency.prefork:TaskPool", "max-concurrency": 2}
    },
}


@pytest.fixture(autouse=True)
def _broker_from_arguments(monkeypatch):
    """Celery prefers the environment's CELERY_BROKER_URL to the broker an app is given."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)


@pytest.fixture
def app():
    """A Celery app on the in-memory broker, current while the test runs."""
    previous = current_app._get_current_object()
    app = Celery("diagnose", broker="memory://", backend="django-db")
    app.set_current()
    yield app
    previous.set_current()


@pytest.fixture
def workers(app, monkeypatch):
    """Workers that answer ``inspect().stats()`` with the replies the test sets."""
    replies = dict(PREFORK_WORKER)
    monkeypatch.setattr(
        app.control, "inspect", lambda timeout: SimpleNamespace(stats=lambda: replies)
    )
    return replies


def by_name(**kwargs) -> dict[str, CheckResult]:
    return {result.name: result for result in run_diagnostics(timeout=0.1, **kwargs)}


def test_a_healthy_site_passes_every_check(workers):
    out = StringIO()
    call_command("tasklog_diagnose", stdout=out)
    assert out.getvalue() == (
        "check           status    detail" + " " * 100 + "hint\n"
        "--------------  --------  " + "-" * 104 + "  ------\n"
        "settings        PASS      All CELERY_TASKLOG_* settings are valid.\n"
        f"database        PASS      'default' ({connection.vendor}) is reachable, "
        "tasklog is migrated.\n"
        "broker          PASS      memory://:**@localhost// is reachable.\n"
        "workers         PASS      1 answered: celery@web1 (prefork x2).\n"
        "result backend  PASS      django-db: task states come from TaskResult.\n"
        "beat schedule   PASS      'tasklog: prune old task logs' runs 30 3 * * * "
        "(m/h/dM/MY/d) UTC, last run never; logs are kept 30 days.\n"
        "capture         PASS      Enabled for tasks based on TerminalLoggingTask; no stale runs.\n"
    )


def test_json_lists_the_checks(workers):
    out = StringIO()
    call_command("tasklog_diagnose", "--format", "json", stdout=out)
    checks = json.loads(out.getvalue())
    assert [check["name"] for check in checks] == [
        "settings",
        "database",
        "broker",
        "workers",
        "result backend",
        "beat schedule",
        "capture",
    ]
    assert checks[3] == {
        "name": "workers",
        "status": "PASS",
        "detail": "1 answered: celery@web1 (prefork x2).",
        "hint": "",
    }


def test_no_worker_is_a_failure_and_a_non_zero_exit(app):
    out = StringIO()
    with pytest.raises(CommandError, match=r"^Failed: workers\.$"):
        call_command("tasklog_diagnose", "--timeout", "0.1", "--format", "json", stdout=out)
    workers = json.loads(out.getvalue())[3]
    assert workers == {
        "name": "workers",
        "status": "FAIL",
        "detail": "No worker answered within 0.1 s.",
        "hint": "Start a worker: celery -A <project> worker -l info.",
    }


def test_an_unreachable_broker_fails_and_workers_are_not_asked():
    app = Celery("down", broker="redis://127.0.0.1:1/0", backend="django-db")
    results = by_name(app=app)
    assert results["broker"].status == "FAIL"
    assert results["broker"].detail.startswith("OperationalError: ")
    assert results["broker"].hint == "Start the broker, or fix CELERY_BROKER_URL."
    assert results["workers"] == CheckResult(
        "workers", "FAIL", "Not asked: the broker is unreachable.", "Fix the broker first."
    )


@override_settings(CELERY_TASKLOG_CAPTURE_FD=True)
def test_descriptor_capture_with_a_threads_worker_fails(workers):
    workers["celery@web2"] = {"pool": {"implementation": "celery.concurrency.thread:TaskPool"}}
    result = by_name()["workers"]
    assert result.status == "FAIL"
    assert result.detail.startswith(
        "celery@web1 (prefork x2), celery@web2 (threads x?). CELERY_TASKLOG_CAPTURE_FD=True "
        "cannot be used with the 'threads' pool"
    )
    assert result.hint == "Use the prefork or solo pool, or set CELERY_TASKLOG_CAPTURE_FD=False."


@override_settings(CELERY_TASKLOG_MAX_LINES="abc")
def test_a_bad_setting_fails_with_the_check_message(workers):
    assert by_name()["settings"] == CheckResult(
        "settings",
        "FAIL",
        "The setting CELERY_TASKLOG_MAX_LINES must be a number, got 'abc'.",
        "Lines stored per task (head and tail); 0: all. (tasklog.E002)",
    )


def test_a_result_backend_other_than_django_db_is_a_warning():
    app = Celery("cache", broker="memory://", backend="cache+memory://")
    assert by_name(app=app)["result backend"] == CheckResult(
        "result backend",
        "WARN",
        "Results go to CacheBackend: logs show FINISHED, not SUCCESS or FAILURE.",
        "Set CELERY_RESULT_BACKEND = 'django-db' (django-celery-results).",
    )


def test_beat_schedule_missing_disabled_or_switched_off(workers):
    PeriodicTask.objects.filter(name=PRUNE_ENTRY_NAME).update(enabled=False)
    assert by_name()["beat schedule"] == CheckResult(
        "beat schedule",
        "WARN",
        "'tasklog: prune old task logs' is disabled.",
        "Enable it in the admin's periodic tasks.",
    )
    PeriodicTask.objects.filter(name=PRUNE_ENTRY_NAME).delete()
    assert by_name()["beat schedule"] == CheckResult(
        "beat schedule",
        "FAIL",
        "No periodic task 'tasklog: prune old task logs'.",
        "Run python manage.py migrate.",
    )
    with override_settings(CELERY_TASKLOG_PRUNE_SCHEDULE=None):
        assert by_name()["beat schedule"].detail == (
            "Switched off by CELERY_TASKLOG_PRUNE_SCHEDULE = None."
        )


@override_settings(CELERY_TASKLOG_STALE_AFTER=600)
def test_stale_runs_are_a_warning(workers):
    make_log("dead", finished=None)
    TaskLog.objects.update(last_seen=timezone.now() - timedelta(seconds=700))
    assert by_name()["capture"] == CheckResult(
        "capture",
        "WARN",
        "1 run(s) silent for more than 600 s: their worker probably died.",
        "The periodic prune marks them interrupted; look for OOM kills in the worker logs.",
    )


@override_settings(CELERY_TASKLOG_ENABLED=False)
def test_capture_switched_off_is_a_warning(workers):
    assert by_name()["capture"].detail == "Capture is off: CELERY_TASKLOG_ENABLED = False."


def test_round_trip_waits_for_the_probe_line(app, workers, monkeypatch):
    def send_task(name, args):
        assert name == "tasklog.probe"
        make_log("probe-1", finished=None)
        add_lines("probe-1", [(Stream.STDOUT, f"tasklog probe {args[0]}")])
        return SimpleNamespace(id="probe-1", state="SUCCESS")

    monkeypatch.setattr(app, "send_task", send_task)
    result = by_name(probe=True)["round trip"]
    assert result.status == "PASS"
    assert result.detail.startswith("Probe probe-1: its line was stored ")


def test_round_trip_fails_when_no_line_comes(app, workers, monkeypatch):
    monkeypatch.setattr(
        app, "send_task", lambda name, args: SimpleNamespace(id="probe-2", state="PENDING")
    )
    assert by_name(probe=True)["round trip"] == CheckResult(
        "round trip",
        "FAIL",
        "Probe probe-2: no line stored within 0.1 s (state PENDING).",
        "Does the worker capture (CELERY_TASKLOG_ENABLED) into the same database?",
    )


def test_round_trip_needs_a_worker(app):
    assert by_name(probe=True)["round trip"] == CheckResult(
        "round trip", "FAIL", "Not run: no worker answered.", "Start a worker, then try again."
    )


@pytest.mark.integration
def test_probe_round_trip_through_a_real_worker(worker_factory):
    worker_factory(pool="prefork", concurrency=2)
    out = StringIO()
    call_command("tasklog_diagnose", "--probe", "--timeout", "30", "--format", "json", stdout=out)
    checks = {check["name"]: check for check in json.loads(out.getvalue())}
    assert {name: check["status"] for name, check in checks.items()} == {
        "settings": "PASS",
        "database": "PASS",
        "broker": "PASS",
        "workers": "PASS",
        "result backend": "PASS",
        "beat schedule": "PASS",
        "capture": "PASS",
        "round trip": "PASS",
    }
    assert "(prefork x2)" in checks["workers"]["detail"]
    probe_id = checks["round trip"]["detail"].split()[1].rstrip(":")
    assert TaskLogLine.objects.for_task(probe_id).containing("tasklog probe ").exists()
