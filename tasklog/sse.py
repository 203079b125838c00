"""Server-Sent Events for one task's log: the event format and the stream that follows the task.

Every stored line is one event ``line`` whose ``id:`` is the line's seq, so a browser that
reconnects sends ``Last-Event-ID`` and resumes exactly after the last line it saw. Between
lines the stream sends ``state`` when the task's state or progress changes, a comment as a
heartbeat, and at the end one event ``end`` carrying the final task header, then closes.

The stream ends with ``end`` only when the log is complete (``results.is_complete``: a final
state *and* a closed log), and only once every stored line was sent, so no line is ever
missing before ``end``.

Each read is by (task_id, seq), an index range scan. On PostgreSQL (``CELERY_TASKLOG_PUSH``)
a stream reads when the process's listener says the task changed (``push``): a flush or the
end of a run. It also rereads every ``RECHECK_INTERVAL`` seconds, at the same instants in
every stream so that those of one task share the read, for what comes without a flush (a
progress update, the start of a silent task, a run that goes stale). Elsewhere, and while the
listener is down, the stream polls every ``POLL_INTERVAL`` seconds. Each read runs
in the event loop's shared thread pool and hands its database connection back afterwards
(``pooled.in_pool``), so a viewer holds neither a thread nor a connection while it waits.
A database error ends the stream with ``retry:``: the browser comes back after ``RECONNECT_MS``
with ``Last-Event-ID`` and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from . import push, sections
from .archive import ArchiveError
from .models import TaskLog, TaskLogLine
from .pooled import in_pool
from .results import result_for
from .serializers import line_as_dict, task_as_dict

POLL_INTERVAL = 0.25
HEARTBEAT_INTERVAL = 15.0
MAX_LIFETIME = 30 * 60
BATCH_SIZE = 500
RECONNECT_MS = 2000
RECHECK_INTERVAL = 5.0
PUSHED_READ_GAP = POLL_INTERVAL  # a pushed stream reads no more often than a polling one


@dataclass(frozen=True)
class Snapshot:
    """The task header and the lines stored after a seq, read in that order."""

    task: dict
    lines: list[dict]

    @property
    def caught_up(self) -> bool:
        return len(self.lines) < BATCH_SIZE


def read_snapshot(task_id: str, after: int) -> Snapshot:
    """Read the header first, then the lines: a complete log read here has all its lines in.

    ``complete`` means no line will be stored any more, so lines read after it are the whole
    rest of the log.
    """
    log = TaskLog.objects.find(task_id)
    task = task_as_dict(log, result_for(task_id))
    log_lines = TaskLogLine.objects.for_task(task_id, log=log)
    places, _open_groups = sections.placed(next(log_lines.pages(after, BATCH_SIZE), []), log_lines)
    return Snapshot(task=task, lines=[line_as_dict(line, place) for line, place in places])


def format_event(event: str, data: dict, event_id: int | None = None) -> str:
    """One SSE event; ``data`` is JSON with non-ASCII escaped, so it is always one line."""
    fields = [f"id: {event_id}"] if event_id is not None else []
    fields += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return "\n".join(fields) + "\n\n"


def retry_field(milliseconds: int) -> str:
    return f"retry: {milliseconds}\n\n"


HEARTBEAT = ": keep-alive\n\n"
DATABASE_UNAVAILABLE = ": database unavailable\n\n" + retry_field(RECONNECT_MS)


def _status(task: dict) -> tuple:
    return task["state"], task["progress"], task["finished"], task["attempts"]


def events_for(snapshot: Snapshot, previous_status: tuple | None) -> list[str]:
    """The events a snapshot adds: its lines, then ``state`` or ``end`` once caught up."""
    events = [format_event("line", line, line["seq"]) for line in snapshot.lines]
    if snapshot.caught_up:
        if snapshot.task["complete"]:
            events.append(format_event("end", snapshot.task))
        elif _status(snapshot.task) != previous_status:
            events.append(format_event("state", snapshot.task))
    return events


def is_end(snapshot: Snapshot) -> bool:
    return snapshot.caught_up and snapshot.task["complete"]


async def follow_task(
    task_id: str,
    after: int,
    *,
    lifetime: float = MAX_LIFETIME,
    poll_interval: float = POLL_INTERVAL,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    recheck_interval: float | None = None,
) -> AsyncIterator[str]:
    """Events for the lines after ``after`` until the task ends or ``lifetime`` is over.

    When the lifetime is over, or the database fails, the stream just closes: the browser
    reconnects after ``RECONNECT_MS`` with ``Last-Event-ID`` and a fresh connection carries on.
    """
    listener = push.listener()
    with listener.subscribed(task_id) if listener else contextlib.nullcontext() as wakeup:
        events = _follow(
            task_id,
            after,
            wakeup,
            lifetime=lifetime,
            poll_interval=poll_interval,
            heartbeat_interval=heartbeat_interval,
            recheck_interval=recheck_interval or RECHECK_INTERVAL,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                yield event


async def _follow(
    task_id: str,
    after: int,
    wakeup: push.Subscription | None,
    *,
    lifetime: float,
    poll_interval: float,
    heartbeat_interval: float,
    recheck_interval: float,
) -> AsyncIterator[str]:
    """The stream of ``follow_task``: it reads when ``wakeup`` says the task changed, or every
    ``poll_interval`` while nothing is pushed (no listener, or the listener is down)."""
    yield retry_field(RECONNECT_MS)
    now = time.monotonic()
    deadline, last_sent, last_read, status = now + lifetime, now, now, None
    must_read, recheck_at = True, None
    while True:
        if must_read:
            # The read may be one that other streams of the task began: since the wake-up (it
            # sees what woke them), or since the recheck's tick; never an older one.
            if wakeup is not None and wakeup.woken.is_set():
                not_before = wakeup.woken_at
            else:
                not_before = time.monotonic() if recheck_at is None else recheck_at
            recheck_at = None
            if wakeup is not None:
                wakeup.woken.clear()  # before the read: a change committed during it wakes again
            try:
                snapshot = await shared_read(task_id, after, not_before)
            except DatabaseError:
                yield DATABASE_UNAVAILABLE
                return
            except ArchiveError as error:
                yield format_event("archive_error", {"error": str(error)})
                return
            last_read = time.monotonic()
            events = events_for(snapshot, status)
            if events:
                yield "".join(events)
                last_sent = time.monotonic()
            if is_end(snapshot):
                return
            if snapshot.lines:
                after = snapshot.lines[-1]["seq"]
            if not snapshot.caught_up:
                continue
            status = _status(snapshot.task)
        now = time.monotonic()
        if now >= deadline:
            return
        if now - last_sent >= heartbeat_interval:
            yield HEARTBEAT
            last_sent = now
        must_read = True
        if wakeup is None:
            await asyncio.sleep(poll_interval)
            continue
        if not wakeup.pushed:  # the listener is down: poll, but wake when it is back
            await wakeup.wait(poll_interval)
            continue
        recheck_at = next_tick(last_read, recheck_interval)
        woken = await wakeup.wait(min(deadline, last_sent + heartbeat_interval, recheck_at) - now)
        now = time.monotonic()
        must_read = woken or now >= recheck_at
        if woken and now - last_read < PUSHED_READ_GAP:  # a busy task: read no more than polling
            await asyncio.sleep(last_read + PUSHED_READ_GAP - now)


def next_tick(moment: float, interval: float) -> float:
    """The first multiple of ``interval`` after ``moment`` on the monotonic clock: the streams
    of a process recheck at the same instants, so those of one task share the read."""
    return (math.floor(moment / interval) + 1) * interval


_reads_in_flight: dict[tuple, tuple[float, asyncio.Future]] = {}
SHARED_READ_KEPT = 1.0  # seconds a finished read stays joinable by streams woken before it began


async def shared_read(task_id: str, after: int, not_before: float) -> Snapshot:
    """``read_snapshot`` on the shared pool; streams of one task at the same seq share a read
    that began at ``not_before`` or later (a thousand viewers woken by one flush: one read).

    A read that began after a stream's wake-up sees the change that woke it, so joining it
    loses nothing; a read begun earlier is never joined. A finished read stays joinable for
    ``SHARED_READ_KEPT``: on a loaded server the streams of one wake-up can reach their read
    after the first of them has finished it.
    """
    place = (asyncio.get_running_loop(), task_id, after)
    in_flight = _reads_in_flight.get(place)
    if in_flight is not None and in_flight[0] >= not_before:
        return await asyncio.shield(in_flight[1])
    read = asyncio.ensure_future(in_pool(read_snapshot)(task_id, after))
    _reads_in_flight[place] = (time.monotonic(), read)

    def forget_later(done: asyncio.Future) -> None:
        if not done.cancelled():
            done.exception()  # retrieved: every stream that waited on it got it already
        place[0].call_later(SHARED_READ_KEPT, forget, done)

    def forget(done: asyncio.Future) -> None:
        if _reads_in_flight.get(place, (0, None))[1] is done:
            del _reads_in_flight[place]

    read.add_done_callback(forget_later)
    return await asyncio.shield(read)


async def one_pass(task_id: str, after: int) -> str:
    """What is there now, for servers that cannot stream asynchronously (WSGI).

    The response ends at once and the browser comes back after ``RECONNECT_MS`` with
    ``Last-Event-ID``: short polling over SSE, no thread held between polls. It reads in the
    request's own thread, whose connection the end of the request hands back.
    """
    snapshot = await sync_to_async(read_snapshot)(task_id, after)
    return retry_field(RECONNECT_MS) + "".join(events_for(snapshot, None))
