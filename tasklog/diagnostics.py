"""Health checks of a celery-tasklog installation, for ``tasklog_diagnose`` and the diagnostic page.

Each check answers PASS, WARN or FAIL with a one-line detail and a hint saying what to do.
A check never raises: an unexpected error is its FAIL, so one broken part does not hide the others.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from celery import current_app
from django.apps import apps
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from .checks import check_fd_capture_pool, check_settings, fd_capture_pool_error
from .conf import PREFIX, settings
from .models import TaskLog, TaskLogLine
from .pools import pool_name, tasks_share_a_process
from .reading import local_time
from .schedule import PRUNE_ENTRY_NAME, beat_ready, prune_entry

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
PROBE_TASK = "tasklog.probe"
PROBE_POLL_INTERVAL = 0.1
PING_TIMEOUT = 1.0
START_WORKER = "Start a worker: celery -A <project> worker -l info."


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str
    hint: str = ""


def diagnostic(name: str, failure_hint: str) -> Callable:
    """Make a function returning ``(status, detail[, hint])`` a check that never raises."""

    def decorate(function: Callable) -> Callable[..., CheckResult]:
        @functools.wraps(function)
        def run(*args) -> CheckResult:
            try:
                return CheckResult(name, *function(*args))
            except Exception as error:
                return CheckResult(name, FAIL, f"{type(error).__name__}: {error}", failure_hint)

        return run

    return decorate


def run_diagnostics(*, probe: bool = False, timeout: float = 10.0, app=None) -> list[CheckResult]:
    """Every check, in the order a reader fixes problems; the round trip only with ``probe``."""
    app = app or current_app
    broker = check_broker(app, timeout)
    workers = check_workers(app, timeout, broker.status == PASS)
    results = [
        check_settings_valid(),
        check_database(),
        broker,
        workers,
        check_result_backend(app),
        check_beat_schedule(),
        check_capture(),
    ]
    if probe:
        results.append(check_round_trip(app, timeout, workers.status != FAIL))
    return results


@diagnostic("settings", "Fix the setting named above.")
def check_settings_valid():
    errors = [*check_settings(), *check_fd_capture_pool()]
    if errors:
        return FAIL, " ".join(error.msg for error in errors), f"{errors[0].hint} ({errors[0].id})"
    return PASS, f"All {PREFIX}* settings are valid."


@diagnostic("database", "Check DATABASES and CELERY_TASKLOG_DATABASE, and that the server runs.")
def check_database():
    connection = connections[settings.DATABASE]
    connection.ensure_connection()
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes("tasklog"))
    if plan:
        return (
            FAIL,
            f"{settings.DATABASE!r} is reachable, {len(plan)} tasklog migration(s) not applied.",
            f"python manage.py migrate tasklog --database {settings.DATABASE}",
        )
    return PASS, f"{settings.DATABASE!r} ({connection.vendor}) is reachable, tasklog is migrated."


@diagnostic("broker", "Start the broker, or fix CELERY_BROKER_URL.")
def check_broker(app, timeout: float):
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        return PASS, f"{connection.as_uri()} is reachable."


@diagnostic("workers", START_WORKER)
def check_workers(app, timeout: float, broker_reachable: bool):
    if not broker_reachable:
        return FAIL, "Not asked: the broker is unreachable.", "Fix the broker first."
    replies = app.control.inspect(timeout=min(timeout, PING_TIMEOUT)).stats() or {}
    if not replies:
        return FAIL, f"No worker answered within {min(timeout, PING_TIMEOUT):g} s.", START_WORKER
    pools = {
        name: pool_name(stats.get("pool", {}).get("implementation", ""))
        for name, stats in sorted(replies.items())
    }
    detail = ", ".join(
        f"{name} ({pool} x{replies[name].get('pool', {}).get('max-concurrency', '?')})"
        for name, pool in pools.items()
    )
    threaded = sorted({pool for pool in pools.values() if tasks_share_a_process(pool)})
    if settings.CAPTURE_FD and threaded:
        error = fd_capture_pool_error(threaded[0])
        return FAIL, f"{detail}. {error.msg}", error.hint
    return PASS, f"{len(replies)} answered: {detail}."


@diagnostic("result backend", "Set CELERY_RESULT_BACKEND = 'django-db'.")
def check_result_backend(app):
    hint = "Set CELERY_RESULT_BACKEND = 'django-db' (django-celery-results)."
    if not apps.is_installed("django_celery_results"):
        return WARN, "django_celery_results is not installed: task states are unknown.", hint
    from django_celery_results.backends import DatabaseBackend

    if not isinstance(app.backend, DatabaseBackend):
        return (
            WARN,
            f"Results go to {type(app.backend).__name__}: logs show FINISHED, not SUCCESS "
            "or FAILURE.",
            hint,
        )
    return PASS, "django-db: task states come from TaskResult."


@diagnostic("beat schedule", "Run python manage.py migrate, which creates the entry.")
def check_beat_schedule():
    if settings.PRUNE_SCHEDULE is None:
        return (
            WARN,
            f"Switched off by {PREFIX}PRUNE_SCHEDULE = None.",
            "Run python manage.py tasklog_prune from cron, or set a crontab.",
        )
    if not beat_ready():
        return (
            WARN,
            "django_celery_beat is not installed or not migrated: nothing prunes old logs.",
            "Add django_celery_beat and migrate, or run tasklog_prune from cron.",
        )
    entry = prune_entry()
    if entry is None:
        return FAIL, f"No periodic task {PRUNE_ENTRY_NAME!r}.", "Run python manage.py migrate."
    if not entry.enabled:
        return (
            WARN,
            f"{PRUNE_ENTRY_NAME!r} is disabled.",
            "Enable it in the admin's periodic tasks.",
        )
    last_run = local_time(entry.last_run_at) if entry.last_run_at else "never"
    kept = f"{settings.RETENTION_DAYS} days" if settings.RETENTION_DAYS else "forever"
    return PASS, (
        f"{PRUNE_ENTRY_NAME!r} runs {entry.crontab or entry.interval}, last run {last_run}; "
        f"logs are kept {kept}."
    )


@diagnostic("capture", "Check CELERY_TASKLOG_DATABASE and that the log tables are migrated.")
def check_capture():
    if not settings.ENABLED:
        return WARN, f"Capture is off: {PREFIX}ENABLED = False.", "Remove the setting to capture."
    stale = TaskLog.objects.stale(settings.STALE_AFTER).count()
    if stale:
        return (
            WARN,
            f"{stale} run(s) silent for more than {settings.STALE_AFTER} s: their worker "
            "probably died.",
            "The periodic prune marks them interrupted; look for OOM kills in the worker logs.",
        )
    scope = "every task" if settings.ALL_TASKS else "tasks based on TerminalLoggingTask"
    return PASS, f"Enabled for {scope}; no stale runs."


@diagnostic("round trip", "Check that the worker runs this project's code and settings.")
def check_round_trip(app, timeout: float, workers_answered: bool):
    if not workers_answered:
        return FAIL, "Not run: no worker answered.", "Start a worker, then try again."
    token = uuid.uuid4().hex
    sent = time.monotonic()
    probe = app.send_task(PROBE_TASK, args=[token])
    lines = TaskLogLine.objects.for_task(probe.id).containing(token)
    while time.monotonic() - sent < timeout:
        if lines.exists():
            latency = time.monotonic() - sent
            return PASS, f"Probe {probe.id}: its line was stored {latency:.2f} s after sending."
        time.sleep(PROBE_POLL_INTERVAL)
    return (
        FAIL,
        f"Probe {probe.id}: no line stored within {timeout:g} s (state {probe.state}).",
        "Does the worker capture (CELERY_TASKLOG_ENABLED) into the same database?",
    )
