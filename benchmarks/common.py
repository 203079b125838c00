"""What every benchmark shares: a throwaway database beside the services, Django set up on it,
real worker processes, the web server, and the output (a table, then one JSON line of figures).

Benchmarks need a database and Redis, named by ``DATABASE_URL`` and ``CELERY_BROKER_URL``
(``make bench`` starts throwaway servers): PostgreSQL for most, SQLite or MySQL/MariaDB for
``ingest``. Each run creates a database of its own next to the one named, so nothing there is
touched, and drops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_REDIS_DB = "7"
READY_TIMEOUT = 30.0
LOG_DIR = Path(tempfile.gettempdir()) / "tasklog-bench"
POSTGRESQL = ("postgres://", "postgresql://")  # most benchmarks; ``ingest`` takes any database
LINES_TABLE = "tasklog_tasklogline"
COPY_COLUMNS = "task_id, seq, timestamp, stream, level, message"
COPY_COLUMN_TYPES = ["varchar", "integer", "timestamptz", "varchar", "smallint", "text"]


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of a few seconds"
    )
    return parser.parse_args(argv)


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def _require(variable: str, schemes: tuple[str, ...]) -> str:
    value = os.environ.get(variable, "")
    if not value.startswith(schemes):
        sys.exit(
            f"benchmarks need {variable} ({' or '.join(schemes)}); "
            "`make bench` starts throwaway servers"
        )
    return value


@contextlib.contextmanager
def benchmark_environment(schemes: tuple[str, ...] = POSTGRESQL) -> Iterator[None]:
    """Django on a new, migrated database, and Celery on a Redis database of its own;
    subprocesses (workers, uvicorn, manage.py) inherit both through the environment.

    The database is created next to the one ``DATABASE_URL`` names (PostgreSQL or
    MySQL/MariaDB), or is a new file for ``sqlite://``. The settings are the test suite's: the
    example project's plus the tasklog URLs.
    """
    base_url = _require("DATABASE_URL", schemes)
    broker_url = _require("CELERY_BROKER_URL", ("redis://",))
    name = f"tasklog_bench_{os.getpid()}"
    LOG_DIR.mkdir(exist_ok=True)
    scheme = urlsplit(base_url).scheme + "://"
    with DATABASES[scheme](base_url, name) as url:
        os.environ.update(
            {
                "DATABASE_URL": url,
                "CELERY_BROKER_URL": _with_path(broker_url, "/" + BENCH_REDIS_DB),
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "CELERY_TASKLOG_MAX_LINES": "0",
                "PYTHONPATH": _python_path(),
            }
        )
        try:
            _set_up_django()
            yield
        finally:
            from django.db import connections

            connections.close_all()


@contextlib.contextmanager
def _postgres_database(server_url: str, name: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_path(server_url, "/" + name)
        finally:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _mysql_database(server_url: str, name: str) -> Iterator[str]:
    import MySQLdb

    parts = urlsplit(server_url)
    server = MySQLdb.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        server.query(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield _with_path(server_url, "/" + name)
    finally:
        server.query(f"DROP DATABASE IF EXISTS `{name}`")
        server.close()


@contextlib.contextmanager
def _sqlite_database(_url: str, name: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="tasklog-bench-") as directory:
        yield f"sqlite:///{directory}/{name}.sqlite3"


DATABASES = {
    "postgres://": _postgres_database,
    "postgresql://": _postgres_database,
    "mysql://": _mysql_database,
    "sqlite://": _sqlite_database,
}


def _python_path() -> str:
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def _set_up_django() -> None:
    import django
    import redis
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


def raw_connection():
    """A driver connection to the benchmark database, outside Django's ORM: psycopg on
    PostgreSQL, else the backend's own driver with Django's connection parameters."""
    from django.db import connection

    if connection.vendor == "postgresql":
        import psycopg

        return psycopg.connect(os.environ["DATABASE_URL"])
    return connection.get_new_connection(connection.get_connection_params())


def line_rows(count: int) -> list[tuple]:
    """The rows the capture stores for ``print_lines(count)`` of a new task, made up front."""
    from benchmarks.workloads import printed_lines

    task_id = f"bench-{uuid.uuid4()}"
    start = datetime.now(tz=UTC)
    return [
        (task_id, seq, start + timedelta(microseconds=seq), "stdout", None, message)
        for seq, message in enumerate(printed_lines(count), start=1)
    ]


def copy_rows(rows: list[tuple], table: str = LINES_TABLE, binary: bool = True) -> float:
    """Seconds for one COPY of ``rows`` into ``table`` on a connection of its own, commit
    included: the database's ingest limit, which the capture's figures are measured against."""
    statement = f"COPY {table} ({COPY_COLUMNS}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    with raw_connection() as connection:
        start = time.perf_counter()
        with connection.cursor().copy(statement) as copy:
            if binary:
                copy.set_types(COPY_COLUMN_TYPES)
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - start


def parallel_copies(streams: int, count: int) -> float:
    """Rows/s of ``streams`` processes each running one binary COPY of ``count`` rows at once
    (rows made before a common start): the ingest limit for as many writers."""
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(streams)
    spans = context.Queue()
    processes = [
        context.Process(target=_copy_when_all_ready, args=(count, ready, spans))
        for _ in range(streams)
    ]
    for process in processes:
        process.start()
    times = [spans.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    seconds = max(end for _start, end in times) - min(start for start, _end in times)
    return streams * count / seconds


def _copy_when_all_ready(count: int, ready, spans) -> None:
    rows = line_rows(count)
    ready.wait()
    start = time.monotonic()
    copy_rows(rows)
    spans.put((start, time.monotonic()))


def timed(function: Callable[[], object]) -> float:
    """Seconds ``function()`` took."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_time(function: Callable[[], object], repeat: int) -> float:
    return statistics.median(timed(function) for _ in range(repeat))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and max of ``values``, rounded to the millisecond."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(p95, 3),
        "max": round(ordered[-1], 3),
    }


def wait_until(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.02):
    """Poll ``condition`` until it returns something true, which is returned."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(poll)
    return result


@contextlib.contextmanager
def workers(count: int = 1, pool: str = "prefork", concurrency: int = 1) -> Iterator[list]:
    """``count`` real ``celery worker`` processes of ``benchmarks.celery_app``, ready to work.

    Each also consumes a queue of its own (``own_queue``), to be handed exactly its share.
    """
    from celery.utils.nodenames import host_format

    from benchmarks.celery_app import app
    from tests.harness import WorkerProcess

    started = []
    try:
        for index in range(count):
            name = f"bench{index}-{uuid.uuid4().hex[:6]}"
            command = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker"]
            nodename = host_format(f"{name}@%h")
            command += ["-P", pool, "-c", str(concurrency), "-n", nodename, "-l", "WARNING"]
            command += ["-Q", f"celery,{name}", "--prefetch-multiplier", "1"]
            command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
            log_path = LOG_DIR / f"{name}.log"
            started.append(WorkerProcess(command, dict(os.environ), nodename, log_path))
        for worker in started:
            worker.wait_until_ready(app)
        yield started
    finally:
        for worker in started:
            worker.stop()


def own_queue(worker) -> str:
    """The queue only ``worker`` (of ``workers()``) consumes."""
    return worker.nodename.split("@")[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def web_server() -> Iterator[tuple[str, int]]:
    """The example project's ASGI application under uvicorn, as deployed; yields host and port."""
    with web_server_process() as (address, _process):
        yield address


@contextlib.contextmanager
def web_server_process() -> Iterator[tuple[tuple[str, int], subprocess.Popen]]:
    """``web_server``, yielding its process too (for its CPU time and memory)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "example.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--backlog", "4096"]
    with (LOG_DIR / f"uvicorn-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until(lambda: _accepts(port), READY_TIMEOUT, "uvicorn", poll=0.1)
            yield ("127.0.0.1", port), process
        finally:
            process.terminate()
            process.wait(10)


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def staff_session_cookie() -> str:
    """A ``Cookie`` header value of a logged-in staff user who may view the logs."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    user = User.objects.create_user(f"bench-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tasklog"))
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def manage(*arguments: str) -> subprocess.Popen:
    """``manage.py`` as a subprocess, its output a pipe written line by line as on a terminal."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def readable(value):
    """A table cell: thousands separated, small numbers to three significant digits."""
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def run(
    benchmark: str,
    description: str,
    measure,
    headers: list[str],
    argv=None,
    schemes: tuple[str, ...] = POSTGRESQL,
) -> dict:
    """Parse ``--quick``, ``measure(size)`` in a benchmark environment, report; the figures.

    ``schemes``: the databases (``DATABASE_URL``'s schemes) the benchmark runs on.
    """
    args = parse_args(description, argv)
    with benchmark_environment(schemes):
        rows, figures = measure("quick" if args.quick else "full")
    report(benchmark, headers, rows, figures)
    return figures


def report(benchmark: str, headers: list[str], rows: list[list], figures: dict) -> None:
    """The human table, then one JSON line of figures (the last line of the output)."""
    from tabulate import tabulate

    cells = [[readable(value) for value in row] for row in rows]
    print(tabulate(cells, headers=headers, disable_numparse=True, colalign=("left",)))
    print(json.dumps({"benchmark": benchmark, **figures}), flush=True)
