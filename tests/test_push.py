"""Pushed live views: a flush NOTIFYs, the web process's one listener wakes only that task's
streams, and a waiting viewer costs no query; polling is the fallback.

The site runs under a real uvicorn in this process (``LiveServer``), so the test counts every
query the web side makes (``counting_queries``) and reaches the process's listener; tasks run
in a real worker process on the same PostgreSQL test database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time

import httpx
import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.db.backends.signals import connection_created
from django.test import Client
from django.urls import reverse

from tasklog import push, sse
from tests import harness
from tests.live_server import LiveServer
from tests.logs import add_lines, make_log, make_user
from tests.test_sse import kinds, parse_events, seqs
from tests.test_task_ids import ID_ZOO

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]
HOSTILE_IDS = [*ID_ZOO, 'it\'s "quoted"', "'); NOTIFY tasklog, 'x'; --", "\\\\ \\x00 $$ $tag$"]
PRINTED_AT = re.compile(r"line \d+ at (\d+\.\d+)")
# Rechecks fall on multiples of the interval on the monotonic clock (sse.next_tick): a minute's
# interval still ticks once a minute, now and then inside a test's counting window (CI: a
# read of the watched task counted as "woken by the storm"). This one never ticks in a run.
NO_RECHECK = 1e9


@contextlib.contextmanager
def counting_queries():
    """Every query this process sends through Django while the block runs: ``[count]``."""
    count, lock, counting = [0], threading.Lock(), threading.Event()
    counting.set()

    def counted(execute, sql, params, many, context):
        if counting.is_set():
            with lock:
                count[0] += 1
        return execute(sql, params, many, context)

    def add_counter(sender, connection, **kwargs):
        connection.execute_wrappers.append(counted)

    connection_created.connect(add_counter)
    try:
        yield count
    finally:
        counting.clear()
        connection_created.disconnect(add_counter)


class EventReader(threading.Thread):
    """An EventSource-like client of one stream: the events and when each arrived."""

    def __init__(self, url: str, cookies: dict):
        super().__init__(daemon=True)
        self.url, self.cookies = url, cookies
        self.arrivals: list[tuple[float, dict]] = []
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with (
                contextlib.suppress(httpx.HTTPError),
                httpx.stream("GET", self.url, cookies=self.cookies, timeout=60) as response,
            ):
                pending = ""
                for text in response.iter_text():
                    pending += text
                    while "\n\n" in pending:
                        block, pending = pending.split("\n\n", 1)
                        for event in parse_events(block + "\n\n"):
                            self.arrivals.append((time.time(), event))
        finally:
            self.done.set()

    def stream(self):
        return httpx.stream("GET", self.url, cookies=self.cookies, timeout=60)

    @property
    def events(self) -> list[dict]:
        return [event for _at, event in self.arrivals]

    def wait_for(self, condition, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.events):
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.events}"
            time.sleep(0.05)


@pytest.fixture
def site():
    server = LiveServer()
    server.start()
    yield server
    server.stop(abruptly=True)


@pytest.fixture
def cookies(transactional_db):
    client = Client()
    client.force_login(make_user("reader"))
    return {"sessionid": client.cookies["sessionid"].value}


def events_url(site: LiveServer, task_id: str) -> str:
    return site.url + reverse("tasklog:task_log_events", args=[task_id])


def until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def listening() -> push.Listener:
    listener = push.listener()
    until(lambda: listener.listening, "the listener")
    return listener


def settle(quiet: float = 0.3, timeout: float = 2.0) -> None:
    """Wait until the web side has sent no query for ``quiet`` seconds (a loaded machine
    makes the listener's catch-up read late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with counting_queries() as queries:
            time.sleep(quiet)
        if queries == [0]:
            return
    raise AssertionError("the web side kept querying")


def test_a_print_reaches_the_viewer_pushed_and_a_waiting_viewer_costs_no_query(
    worker_factory, site, cookies, monkeypatch
):
    from django_celery_results.models import TaskResult

    from tests.tasks import print_slowly

    monkeypatch.setattr(sse, "RECHECK_INTERVAL", NO_RECHECK)
    worker = worker_factory()
    task_id = print_slowly.delay(3, 5.0).id
    reader = EventReader(events_url(site, task_id), cookies)
    reader.start()
    listening()
    reader.wait_for(lambda events: 1 in seqs(events), "line 1")
    settle()  # the catch-up read of a listener that came up after the stream began
    with counting_queries() as queries:
        time.sleep(2.0)  # line 2 is printed 5 s after line 1
    reader.wait_for(lambda events: "end" in kinds(events), "the end")
    done = TaskResult.objects.get(task_id=task_id).date_done.timestamp()

    assert queries == [0], "a waiting viewer polled"
    assert seqs(reader.events) == [1, 2, 3]
    assert kinds(reader.events)[-1] == "end"
    for arrived, event in reader.arrivals:
        if event.get("event") == "line":
            printed = float(PRINTED_AT.match(event["data"]["message"]).group(1))
            assert arrived - printed < 1.5, event
    end_arrived = reader.arrivals[-1][0]
    assert end_arrived - done < 1.5, "the end was not pushed"
    harness.wait_for_task_result(task_id, worker=worker)


def test_a_killed_listener_connection_falls_back_to_polling_reconnects_and_misses_nothing(
    worker_factory, site, cookies, monkeypatch
):
    from tests.tasks import print_slowly

    monkeypatch.setattr(push, "BACKOFF_FIRST", 3.0)  # a down time long enough to see polling
    worker_factory()
    task_id = print_slowly.delay(16, 0.5).id
    reader = EventReader(events_url(site, task_id), cookies)
    reader.start()
    reader.wait_for(lambda events: 2 in seqs(events), "line 2")
    listener = listening()
    with psycopg.connect(**admin_params(), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND datname = current_database()",
            (push.APPLICATION_NAME,),
        ).fetchall()
    assert killed == [(True,)]
    until(lambda: not listener.listening, "the listener to notice")
    seen_when_down = len(seqs(reader.events))
    with counting_queries() as queries:
        time.sleep(2.0)
    assert not listener.listening
    assert queries[0] > 0, "streams did not poll while the listener was down"
    assert len(seqs(reader.events)) > seen_when_down, "no line arrived while the listener was down"
    until(lambda: listener.listening, "the listener to reconnect")
    assert listener.connects == 2
    reader.wait_for(lambda events: "end" in kinds(events), "the end")

    assert seqs(reader.events) == list(range(1, 17))
    assert kinds(reader.events)[-1] == "end"


def admin_params() -> dict:
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name)
    return params


@pytest.mark.abuse
def test_a_notify_storm_of_1000_other_tasks_wakes_no_stream_and_20_streams_share_a_read(
    site, cookies, monkeypatch
):
    monkeypatch.setattr(sse, "RECHECK_INTERVAL", NO_RECHECK)
    make_log("watched", messages=["first"])
    listening()  # before the streams: none of them polls or makes a catch-up read
    readers = [EventReader(events_url(site, "watched"), cookies) for _ in range(20)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.wait_for(lambda events: seqs(events) == [1], "line 1")
    time.sleep(0.5)
    notify = "SELECT pg_notify(%s, %s)"
    with psycopg.connect(**admin_params(), autocommit=True) as worker:  # as flushes would
        with counting_queries() as storm_queries:
            for number in range(1000):
                worker.execute(notify, (push.CHANNEL, push.key(f"other task {number}")))
            time.sleep(1.0)
        with counting_queries() as own_queries:
            add_lines("watched", ["second"])  # stored and NOTIFYd, as a flush does
            for reader in readers:
                reader.wait_for(lambda events: seqs(events) == [1, 2], "line 2", timeout=2.0)

    assert storm_queries == [0], "a stream of another task was woken"
    one_read = 5  # the header, the result, the lines and their sections
    assert 0 < own_queries[0] <= 2 * one_read, "the 20 streams woken did not share their read"


@pytest.mark.abuse
def test_hostile_task_ids_are_pushed_to_their_own_streams(worker_factory):
    from tests.tasks import print_numbered

    worker_factory(concurrency=4)

    async def follow_all():
        async def follow(task_id):
            options = {"poll_interval": 3600, "recheck_interval": 3600, "heartbeat_interval": 3600}
            chunks = [chunk async for chunk in sse.follow_task(task_id, 0, **options)]
            return parse_events("".join(chunks))

        streams = [asyncio.ensure_future(follow(task_id)) for task_id in HOSTILE_IDS]
        await asyncio.to_thread(until, lambda: push.listener().listening, "the listener")
        await asyncio.sleep(0.5)  # every stream subscribed and read once: all else is pushed
        await asyncio.to_thread(start_tasks)
        return await asyncio.wait_for(asyncio.gather(*streams), 60)

    def start_tasks():
        for task_id in HOSTILE_IDS:
            print_numbered.apply_async(("zoo", 3), task_id=task_id)

    for task_id, events in zip(HOSTILE_IDS, async_to_sync(follow_all)(), strict=True):
        assert seqs(events) == [1, 2, 3], task_id
        assert kinds(events)[-1] == "end", task_id
        assert [e["data"]["message"] for e in events if e.get("event") == "line"] == [
            "zoo 1 out",
            "zoo 2 log",
            "zoo 3 err",
        ]


@pytest.mark.abuse
@pytest.mark.parametrize("task_id", HOSTILE_IDS)
def test_the_payload_is_short_and_plain_for_any_id(task_id):
    payload = push.key(task_id)
    assert re.fullmatch(r"[0-9a-f]{32}", payload)
    assert payload != push.key(task_id + "x")


@pytest.mark.django_db(transaction=True)
def test_a_notify_is_delivered_on_commit_only():
    with psycopg.connect(**admin_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {push.CHANNEL}")
        with contextlib.suppress(RuntimeError), transaction.atomic():
            push.notify("rolled back", "default")
            raise RuntimeError
        with transaction.atomic():
            push.notify("committed", "default")
            assert list(listener.notifies(timeout=0.5)) == []
        received = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    assert received == [push.key("committed")]


@pytest.mark.django_db(transaction=True)
def test_only_the_end_of_a_captured_task_is_pushed(settings):
    """A site's other tasks cost the log database nothing when they end."""
    from tests.tasks import plain_task, print_numbered

    with psycopg.connect(**admin_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {push.CHANNEL}")
        push.notify_run_end(sender=plain_task, task_id="plain")
        push.notify_run_end(sender=print_numbered, task_id="captured")
        received = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
        settings.CELERY_TASKLOG_ALL_TASKS = True
        push.notify_run_end(sender=plain_task, task_id="plain, all tasks")
        received += [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    assert received == [push.key("captured"), push.key("plain, all tasks")]


def test_the_rechecks_of_many_streams_of_one_task_are_one_read(site, cookies, monkeypatch):
    monkeypatch.setattr(sse, "RECHECK_INTERVAL", 1.0)
    make_log("watched", messages=["first"])
    listening()
    readers = [EventReader(events_url(site, "watched"), cookies) for _ in range(20)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.wait_for(lambda events: seqs(events) == [1], "line 1")
    with counting_queries() as queries:
        time.sleep(3.0)  # three rechecks, nothing pushed

    one_read = 5
    assert 0 < queries[0] <= 4 * one_read, "each stream rechecked on its own"


def test_the_end_of_a_run_revoked_while_queued_is_pushed(worker_factory):
    """No flush ever happens for it: the worker's ``task_revoked`` sends the NOTIFY."""
    from tests.tasks import print_numbered, print_slowly

    worker = worker_factory(concurrency=1)
    busy = print_slowly.delay(3, 0.5).id
    task_id = print_numbered.delay("never", 3).id  # waits behind ``busy``

    async def follow():
        options = {"poll_interval": 3600, "recheck_interval": 3600, "heartbeat_interval": 3600}
        await asyncio.to_thread(until, lambda: push.listener().listening, "the listener")
        chunks = []
        async for chunk in sse.follow_task(task_id, 0, **options):
            chunks.append(chunk)
            if len(chunks) == 2:  # the queued state was read: all else is pushed
                await asyncio.to_thread(print_numbered.app.control.revoke, task_id)
        return parse_events("".join(chunks))

    events = async_to_sync(asyncio.wait_for)(follow(), 30)

    assert kinds(events)[-1] == "end"
    assert events[-1]["data"]["state"] == "REVOKED"
    assert harness.wait_for_task_result(busy, worker=worker).status == "SUCCESS"
