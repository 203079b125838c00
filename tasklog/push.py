"""Pushed live views on PostgreSQL: a flush says ``NOTIFY``, each web process listens once.

Writers (the capture's flush, the end of a run) call ``notify`` inside the transaction that
stores the change, so PostgreSQL delivers the notification when it commits, never before and
never for a rolled-back flush. The payload is a fixed-length digest of the task id (``key``):
any id fits NOTIFY's 8000-byte limit and no text of a task id reaches the channel.

Each web process holds ONE listening connection (``Listener``, a daemon thread with its own
psycopg 3 connection, not one of Django's) and wakes only the streams subscribed to that
task's key. A stream subscribes before its first read, so a notification that arrives while
it reads is not lost: it reads again. While the listener is down (the connection dropped,
the server restarts) streams poll as before; the listener reconnects with backoff and then
wakes every stream for one catch-up read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Iterator

from django.core.checks import Error
from django.db import connections

from .conf import PREFIX, settings

CHANNEL = "tasklog"
APPLICATION_NAME = "tasklog-listener"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
IDLE_CHECK = 1.0  # seconds the listener waits for notifications before it looks at its flag
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10}

log = logging.getLogger(__name__)


def key(task_id: str) -> str:
    """The payload for a task: 32 hex characters, whatever the id (length, quotes, unicode)."""
    data = task_id.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@functools.cache
def psycopg_can_listen() -> bool:
    """psycopg 3.2 or later: ``notifies(timeout=...)`` lets the listener look up now and then."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return False
    import psycopg

    return "timeout" in inspect.signature(psycopg.Connection.notifies).parameters


def is_on(alias: str | None = None) -> bool:
    """Whether the log database pushes: ``CELERY_TASKLOG_PUSH`` on (or left to its default)
    and the database PostgreSQL with psycopg 3.2+; everywhere else streams poll."""
    alias = alias or settings.DATABASE
    if settings.PUSH is False or connections[alias].vendor != "postgresql":
        return False
    return psycopg_can_listen()


def notify(task_id: str, alias: str) -> None:
    """Tell listening web processes that the task changed; delivered when the caller's
    transaction commits (at once outside a transaction)."""
    notice = notification(task_id, alias)
    if notice is not None:
        expression, params = notice
        with connections[alias].cursor() as cursor:
            cursor.execute(f"SELECT {expression}", params)


def notification(task_id: str, alias: str) -> tuple[str, list] | None:
    """``notify`` as an SQL expression and its parameters, for a writer to fold into a
    statement it runs anyway (a round trip less); None where nothing is pushed."""
    if not is_on(alias):
        return None
    return "pg_notify(%s, %s)", [CHANNEL, key(task_id)]


def notify_run_end(sender=None, task_id=None, request=None, **kwargs) -> None:
    """``task_postrun`` and ``task_revoked``: the final state is stored, say so (the log's own
    last flush may have come before it). Tasks that are not captured cost nothing."""
    from .signals import is_captured

    task_id = task_id or getattr(request, "id", None)
    if task_id and is_captured(sender):
        notify(task_id, settings.DATABASE)


def connect_run_end_signals() -> None:
    """Connected after ``signals.connect_signals``, so the revoke has closed the run first."""
    from celery.signals import task_postrun, task_revoked

    task_postrun.connect(notify_run_end, weak=False, dispatch_uid="tasklog.push.postrun")
    task_revoked.connect(notify_run_end, weak=False, dispatch_uid="tasklog.push.revoked")


class Subscription:
    """One stream's interest in one task: ``woken`` is set by a notification for the task and
    by every change of the listener's state (down, up again)."""

    def __init__(self, listener: Listener, task_key: str):
        self.listener = listener
        self.task_key = task_key
        self.loop = asyncio.get_running_loop()
        self.woken = asyncio.Event()
        self.woken_at = time.monotonic()  # when the listener got the last wake-up

    @property
    def pushed(self) -> bool:
        """Whether notifications arrive now; if not, the stream polls."""
        return self.listener.listening

    def wake(self, received_at: float) -> None:
        """``received_at``: when the listener got the notification, after the change was
        committed. Every stream it wakes gets that same instant, however late its loop runs the
        wake-up, so all of them can share one read that began after it."""
        with contextlib.suppress(RuntimeError):  # the stream's loop is closed: nobody waits
            self.loop.call_soon_threadsafe(self._set, received_at)

    def _set(self, received_at: float) -> None:
        self.woken_at = received_at
        self.woken.set()

    async def wait(self, timeout: float) -> bool:
        """Until woken (True) or ``timeout`` seconds passed (False)."""
        try:
            await asyncio.wait_for(self.woken.wait(), max(timeout, 0))
        except TimeoutError:
            return False
        return True


class Listener:
    """The process's listening connection to one database, in a daemon thread."""

    def __init__(self, alias: str):
        self.alias = alias
        self.listening = False
        self.connects = 0  # how often LISTEN was set up (1 + reconnects)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tasklog-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(IDLE_CHECK + 1)

    @contextlib.contextmanager
    def subscribed(self, task_id: str) -> Iterator[Subscription]:
        subscription = Subscription(self, key(task_id))
        with self._lock:
            self._subscribers.setdefault(subscription.task_key, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                streams = self._subscribers.get(subscription.task_key, set())
                streams.discard(subscription)
                if not streams:
                    self._subscribers.pop(subscription.task_key, None)

    def _wake(self, task_key: str | None) -> None:
        """Wake the streams of one task, or all of them (``None``)."""
        received_at = time.monotonic()
        with self._lock:
            if task_key is None:
                streams = [s for group in self._subscribers.values() for s in group]
            else:
                streams = list(self._subscribers.get(task_key, ()))
        for subscription in streams:
            subscription.wake(received_at)

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopped.is_set():
            try:
                with self._connect() as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._set_listening(True)
                    backoff = BACKOFF_FIRST
                    while not self._stopped.is_set():
                        for notification in connection.notifies(timeout=IDLE_CHECK):
                            self._wake(notification.payload)
            except Exception as error:  # any failure: poll, then reconnect
                log.warning("tasklog: live log listener down (%s); streams poll", error)
            self._set_listening(False)
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _set_listening(self, listening: bool) -> None:
        if listening:
            self.connects += 1
        self.listening = listening
        self._wake(None)  # down: poll now; up: one catch-up read for what came meanwhile

    def _connect(self):
        import psycopg

        params = connections[self.alias].get_connection_params()
        for name in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(name, None)
        return psycopg.connect(
            autocommit=True, application_name=APPLICATION_NAME, **KEEPALIVES, **params
        )


_listeners: dict[tuple[str, int], Listener] = {}
_listeners_lock = threading.Lock()


def listener(alias: str | None = None) -> Listener | None:
    """The process's listener for the log database, started on first use; None when the
    database does not push (streams poll). Keyed by process id too: a thread does not survive
    a fork, so a server that forks its workers after loading the site gets one per worker."""
    alias = alias or settings.DATABASE
    if not is_on(alias):
        return None
    place = (alias, os.getpid())
    with _listeners_lock:
        if place not in _listeners:
            _listeners[place] = Listener(alias)
            _listeners[place].start()
        return _listeners[place]


def stop_listeners() -> None:
    """Stop every listener of the process (tests, a server shutting down)."""
    with _listeners_lock:
        stopping = list(_listeners.values())
        _listeners.clear()
    for each in stopping:
        each.stop()


def check_push(app_configs=None, **kwargs) -> list[Error]:
    """E051/E052: push asked for explicitly where it cannot work (E050, a bad value, is the
    settings check's)."""
    if settings.PUSH is not True:
        return []
    alias = settings.DATABASE
    hint = f"Set {PREFIX}PUSH = None (automatic) or False; streams then poll."
    if connections[alias].vendor != "postgresql":
        return [
            Error(
                f"{PREFIX}PUSH=True needs PostgreSQL, but the log database {alias!r} is "
                f"{connections[alias].vendor}.",
                hint=hint,
                id="tasklog.E051",
            )
        ]
    if not psycopg_can_listen():
        return [
            Error(
                f"{PREFIX}PUSH=True needs psycopg 3.2 or later (LISTEN in a thread); "
                "psycopg2 or an older psycopg 3 is installed.",
                hint=hint,
                id="tasklog.E052",
            )
        ]
    return []
