"""Real services for the integration tests: are they there, Celery worker processes, waiting.

Integration tests run against PostgreSQL (or MySQL/MariaDB) and Redis named by ``DATABASE_URL``
and ``CELERY_BROKER_URL`` (``make test`` starts throwaway ones; the MariaDB entry of
``make test-matrix`` runs them on MariaDB). Workers are real
``celery worker`` subprocesses pointed at pytest-django's test database, so what a test sees is
what a deployed worker does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery, states
from celery.utils.nodenames import host_format
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


# The database servers the integration tests run on (a matrix entry each, see noxfile.py).
SERVER_ENGINES = ("django.db.backends.postgresql", "django.db.backends.mysql")


def missing_services() -> list[str]:
    """Why the integration tests cannot run here; empty when a database server and Redis are
    set up."""
    return service_problems(settings.DATABASES["default"]["ENGINE"], settings.CELERY_BROKER_URL)


def service_problems(database_engine: str, broker_url: str) -> list[str]:
    reasons = []
    if database_engine not in SERVER_ENGINES:
        reasons.append("DATABASE_URL does not name a PostgreSQL or MySQL/MariaDB database")
    if not broker_url.startswith("redis://"):
        reasons.append("CELERY_BROKER_URL does not name a Redis server")
    elif not redis_answers(broker_url):
        reasons.append(f"Redis at {broker_url} does not answer")
    return reasons


def redis_answers(url: str) -> bool:
    import redis

    try:
        return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError:
        return False


def require_services() -> None:
    """Skip the current test when services are missing; fail it instead under ``CI=true``.

    CI must never turn green by skipping the tests that matter most.
    """
    reasons = missing_services()
    if not reasons:
        return
    message = "integration test needs PostgreSQL (or MariaDB) and Redis: " + "; ".join(reasons)
    service_missing(message + " (`make test` starts both)")


def service_missing(message: str) -> None:
    """Skip the current test on a developer's machine; fail it under ``CI=true``."""
    if running_in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def flush_broker() -> None:
    """Drop messages and results a previous test left in the broker's Redis database."""
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


class WorkerProcess:
    """A ``celery worker`` subprocess in its own process group, its output kept in a file."""

    def __init__(self, command: list[str], env: dict[str, str], nodename: str, log_path: Path):
        self.nodename = nodename
        self.log_path = log_path
        self._log = log_path.open("wb")
        self._process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_running(self) -> bool:
        return self._process.poll() is None

    def output(self) -> str:
        """Everything the worker printed so far, stdout and stderr interleaved."""
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, app: Celery, timeout: float = READY_TIMEOUT) -> None:
        """Return once the worker answers a ping; fail the test with its output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                self.fail(f"worker {self.nodename} exited with status {self._process.returncode}")
            if app.control.ping(destination=[self.nodename], timeout=0.5):
                return
        self.fail(f"worker {self.nodename} did not answer ping within {timeout:.0f} s")

    def fail(self, message: str) -> None:
        self.stop()
        pytest.fail(f"{message}; its output:\n{self.output()}", pytrace=False)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Warm shutdown (SIGTERM); SIGKILL whatever is left after ``timeout`` seconds."""
        if self.is_running():
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a crashing machine would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._log.close()


def start_worker(
    app: Celery,
    log_dir: Path,
    database_name: str,
    *,
    pool: str = "prefork",
    concurrency: int = 2,
    env: dict[str, str] | None = None,
    loglevel: str = "INFO",
) -> WorkerProcess:
    """Start a worker of ``tests.celery_app`` on the test database and wait until it answers."""
    name = f"tasklog-{uuid.uuid4().hex[:8]}"
    nodename = host_format(f"{name}@%h")
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker"]
    command += ["-P", pool, "-c", str(concurrency), "-n", nodename, "-l", loglevel]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    worker_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TASKLOG_WORKER_DATABASE_NAME": database_name,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **(env or {}),
    }
    worker = WorkerProcess(command, worker_env, nodename, log_dir / f"{name}.log")
    worker.wait_until_ready(app)
    return worker


def wait_for_task_result(task_id: str, timeout: float = 30.0, worker: WorkerProcess | None = None):
    """The task's ``TaskResult`` once it is in a final state (SUCCESS, FAILURE, REVOKED).

    Fails the test after ``timeout`` seconds, with the worker's output when one is given.
    """
    from django_celery_results.models import TaskResult

    deadline = time.monotonic() + timeout
    while True:
        result = TaskResult.objects.filter(task_id=task_id).first()
        if result is not None and result.status in states.READY_STATES:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    state = result.status if result is not None else "without a result row"
    message = f"task {task_id} still {state} after {timeout:.0f} s"
    if worker is not None:
        message += f"; output of worker {worker.nodename}:\n{worker.output()}"
    pytest.fail(message, pytrace=False)
