"""200 live viewers against a PostgreSQL that allows 20 connections, through a real uvicorn.

The example project (its middleware stack included) runs under uvicorn in its own process, on
its own throwaway PostgreSQL started with ``max_connections=20``. A viewer waiting for lines
must hold no database connection and no thread: the site keeps answering while 200 streams
are open, every stream still gets new lines, and once the viewers leave the connections
return to their baseline. A database that refuses connections ends the streams with
``retry:`` (the browser comes back) and leaks nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tasklog import push

ROOT = Path(__file__).resolve().parent.parent
TASK_ID = "load-test-task"
VIEWERS = 200
MAX_CONNECTIONS = 20
THREAD_BOUND = 40  # the shared pool (min(32, cpus + 4)) and uvicorn's own, with room to spare
STARTUP_TIMEOUT = 30.0

pytestmark = [pytest.mark.abuse, pytest.mark.integration]


def with_services():
    """``scripts/with_services.py`` as a module: its PostgreSQL helpers start the server."""
    spec = importlib.util.spec_from_file_location(
        "with_services", ROOT / "scripts/with_services.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_postgres():
    """A throwaway PostgreSQL with ``max_connections=20``; yields the URL of database ``site``."""
    services = with_services()
    bindir = services.postgres_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed (make test installs it)", pytrace=False)
    workdir = Path(tempfile.mkdtemp(prefix="tasklog-small-postgres-"))
    workdir.chmod(0o755)
    datadir = workdir / "data"
    datadir.mkdir()
    if services.IS_ROOT:
        shutil.chown(datadir, "postgres", "postgres")
    services.run_quietly(
        services.as_postgres(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "-A", "trust", "-N"]
        )
    )
    port = services.free_port()
    options = (
        f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
        f"-c max_connections={MAX_CONNECTIONS} -c superuser_reserved_connections=0"
    )
    pg_ctl = str(bindir / "pg_ctl")
    services.run_quietly(
        services.as_postgres(
            [pg_ctl, "-D", str(datadir), "-o", options, "-l", str(datadir / "log"), "-w", "start"]
        )
    )
    try:
        url = f"postgres://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{url}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE site")
        yield f"{url}/site"
    finally:
        subprocess.run(
            services.as_postgres([pg_ctl, "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)


SEED = f"""
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from django_celery_results.models import TaskResult
from tasklog.models import TaskLog, TaskLogLine

now = timezone.now()
user = User.objects.create_superuser("viewer", password="viewer-pass-123")
TaskLog.objects.create(task_id="{TASK_ID}", task_name="load", started=now, last_seen=now, lines=3)
TaskLogLine.objects.bulk_create(
    TaskLogLine(task_id="{TASK_ID}", seq=n, timestamp=now, stream="stdout", message=f"line {{n}}")
    for n in (1, 2, 3)
)
TaskResult.objects.create(task_id="{TASK_ID}", status="STARTED")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


@pytest.fixture(scope="module")
def site(small_postgres, tmp_path_factory):
    """The example project under uvicorn on the small PostgreSQL: ``(base_url, pid, cookie)``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "DATABASE_URL": small_postgres,
        "DJANGO_DEBUG": "false",
        "PYTHONPATH": str(ROOT),
    }
    django = [sys.executable, "-m", "django"]
    subprocess.run([*django, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [*django, "shell", "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True
    )
    cookie = {"sessionid": seeded.stdout.decode().strip().splitlines()[-1]}
    port = with_services().free_port()
    log = (tmp_path_factory.mktemp("uvicorn") / "uvicorn.log").open("wb")
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "example.asgi:application", "--port", str(port)),
            *("--log-level", "warning", "--lifespan", "off"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not answers(base_url):
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"uvicorn did not start: {Path(log.name).read_text()}", pytrace=False)
        time.sleep(0.1)
    yield base_url, server.pid, cookie
    server.terminate()
    server.wait(10)
    log.close()


def answers(base_url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url}/admin/login/", timeout=2).status_code == 200
    return False


def site_connections(database_url: str, *, listeners: bool = False) -> int:
    """Connections to the site's database other than this one (the web process's): those
    that serve requests, or (``listeners``) the process's one listener (``tasklog.push``)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'site' "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND (application_name = %s) = %s",
            (push.APPLICATION_NAME, listeners),
        ).fetchone()[0]


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def add_line(database_url: str, seq: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tasklog_tasklogline (task_id, seq, timestamp, stream, message) "
            "VALUES (%s, %s, now(), 'stdout', %s)",
            (TASK_ID, seq, f"line {seq}"),
        )
        conn.execute("UPDATE tasklog_tasklog SET last_seen = now() WHERE task_id = %s", (TASK_ID,))
        conn.execute("SELECT pg_notify(%s, %s)", (push.CHANNEL, push.key(TASK_ID)))  # as a flush


class Viewer:
    """One EventSource-like client: the line seqs it saw, and how its stream ended."""

    def __init__(self):
        self.seqs: list[int] = []
        self.text = ""
        self.closed_by_server = False


async def watch(client: httpx.AsyncClient, url: str, viewer: Viewer, leave: asyncio.Event):
    async with client.stream("GET", url, timeout=httpx.Timeout(120, connect=60)) as response:
        assert response.status_code == 200, await response.aread()
        chunks = response.aiter_text()
        while not leave.is_set():
            reading = asyncio.ensure_future(anext(chunks, None))
            leaving = asyncio.ensure_future(leave.wait())
            done, _pending = await asyncio.wait(
                {reading, leaving}, return_when=asyncio.FIRST_COMPLETED
            )
            if reading not in done:
                reading.cancel()
                return
            leaving.cancel()
            chunk = reading.result()
            if chunk is None:
                viewer.closed_by_server = True
                return
            viewer.text += chunk
            viewer.seqs = [
                int(line[4:]) for line in viewer.text.splitlines() if line.startswith("id: ")
            ]


async def until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        await asyncio.sleep(0.2)


def test_200_viewers_hold_no_connection_and_no_thread_and_the_site_keeps_answering(
    site, small_postgres
):
    base_url, pid, cookie = site
    events_url = f"/tasklog/{TASK_ID}/events/"
    lines_url = f"/tasklog/{TASK_ID}/lines/"
    baseline_connections = site_connections(small_postgres)
    threads_before = threads_of(pid)
    figures = {}

    async def main():
        limits = httpx.Limits(max_connections=VIEWERS + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=base_url, cookies=cookie, limits=limits) as client:
            leave = asyncio.Event()
            viewers = [Viewer() for _ in range(VIEWERS)]
            watchers = [asyncio.ensure_future(watch(client, events_url, v, leave)) for v in viewers]
            await until(lambda: all(v.seqs[:3] == [1, 2, 3] for v in viewers), 120, "3 lines")
            threads, connections = [], []
            for seq in (4, 5):
                add_line(small_postgres, seq)
                for _ in range(5):
                    threads.append(threads_of(pid))
                    connections.append(await asyncio.to_thread(site_connections, small_postgres))
                    await asyncio.sleep(0.2)
                await until(lambda n=seq: all(n in v.seqs for v in viewers), 120, f"line {seq}")
            async with httpx.AsyncClient(base_url=base_url) as anonymous:
                login = await anonymous.get("/admin/login/")
            lines = await client.get(lines_url)
            figures.update(threads=max(threads), connections=max(connections))
            figures.update(threads_before=threads_before)
            assert (login.status_code, lines.status_code) == (200, 200)
            assert [line["seq"] for line in lines.json()["lines"]] == [1, 2, 3, 4, 5]
            assert not any(v.closed_by_server for v in viewers)
            leave.set()
            await asyncio.gather(*watchers)

    try:
        asyncio.run(main())
    finally:
        print(f"with {VIEWERS} viewers: {figures}")
    assert figures["connections"] < MAX_CONNECTIONS // 2, figures
    assert site_connections(small_postgres, listeners=True) == 1, "one listener"
    assert figures["threads"] <= THREAD_BOUND, figures
    deadline = time.monotonic() + 15
    while site_connections(small_postgres) > baseline_connections:
        assert time.monotonic() < deadline, "connections did not return to the baseline"
        time.sleep(0.2)
    assert httpx.get(f"{base_url}/admin/login/").status_code == 200
    assert threads_of(pid) <= THREAD_BOUND


def test_a_database_that_refuses_connections_ends_streams_with_retry_and_leaks_nothing(
    site, small_postgres
):
    base_url, _pid, cookie = site
    baseline_connections = site_connections(small_postgres)
    viewers = [Viewer() for _ in range(10)]
    postgres_db = small_postgres.rsplit("/", 1)[0] + "/postgres"

    def allow_connections(allowed: bool) -> None:
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE site ALLOW_CONNECTIONS {str(allowed).lower()}")

    async def main():
        async with httpx.AsyncClient(base_url=base_url, cookies=cookie) as client:
            leave = asyncio.Event()
            watchers = [
                asyncio.ensure_future(watch(client, f"/tasklog/{TASK_ID}/events/", v, leave))
                for v in viewers
            ]
            await until(lambda: all(v.seqs[:3] == [1, 2, 3] for v in viewers), 60, "3 lines")
            await asyncio.to_thread(allow_connections, False)
            try:
                await until(lambda: all(v.closed_by_server for v in viewers), 30, "streams end")
            finally:
                await asyncio.to_thread(allow_connections, True)
            await asyncio.gather(*watchers)

    asyncio.run(main())
    for viewer in viewers:
        assert viewer.text.endswith(": database unavailable\n\nretry: 2000\n\n")
    assert httpx.get(f"{base_url}/admin/login/").status_code == 200
    assert site_connections(small_postgres) <= baseline_connections
