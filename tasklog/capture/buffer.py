"""One run of one task: numbering, buffering, the line cap, and the hand-over to storage.

Lines are numbered relative to the run while they wait in memory; the flush turns them into
the log's ``seq`` under a row lock (``storage.store_batch``). Memory is bounded: past
``BUFFER_LINES`` waiting lines the writing task waits for the flusher while the database is
healthy, and the oldest lines are dropped (counted, echoed, marked) while it is not.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque

from django.db import connections

from ..conf import settings
from ..models import Stream
from . import storage
from .cap import Cap
from .context import bypass, health, logger
from .flusher import is_storing as flusher_is_storing
from .flusher import wake as _wake_flusher
from .lines import DBLogWriter, clean_text, storable_level

BACKPRESSURE_TIMEOUT = 5.0
REFUSALS_BEFORE_GIVING_UP = 3  # flushes in a row failing for a reason other than the connection
YIELD_EVERY = 64  # lines between two chances for the flusher to take the GIL


class TaskCapture:
    """The output of one run of a task on its way to the database."""

    def __init__(
        self,
        task_id: str,
        *,
        task_name: str = "",
        worker: str = "",
        origin: dict | None = None,
        attempt_reason: str = "",
        synchronous: bool = False,
        fallback=None,
    ):
        self.task_id = str(task_id)
        self.task_name = task_name or ""
        self.worker = worker or ""
        self.origin = origin or {}
        self.attempt_reason = attempt_reason
        self.synchronous = synchronous
        self.fallback = fallback
        self.alias = settings.DATABASE
        self.batch_size = settings.BATCH_SIZE
        self.flush_interval = settings.FLUSH_INTERVAL
        self.buffer_lines = max(settings.BUFFER_LINES, 1)
        self.max_line_length = settings.MAX_LINE_LENGTH
        self.cap = Cap(settings.MAX_LINES)
        self.position: storage.Position | None = None  # how far the run is stored; None: not open
        self.run_token = uuid.uuid4().hex  # marks the TaskLog this run opened
        self.unconfirmed: storage.Sent | None = None  # the last flush, if it raised
        self.closing = False
        self.closed = threading.Event()
        self.last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._pending: deque = deque()
        self._oldest: float | None = None
        self._next_rel = 1
        self._lost: list[list[int]] = []
        self._trimmed = 0
        self._writers: dict = {}
        self._sealed = False
        self._flush_lock = threading.Lock()
        self._urgent = False
        self._flushed = threading.Event()
        self._refusals = 0

    def writer(self, stream: str, source: str = "python") -> DBLogWriter:
        """The line splitter of a stream; each source (Python, a descriptor) has its own."""
        key = (stream, source)
        writer = self._writers.get(key)
        if writer is None or writer.closed:
            writer = self._writers[key] = DBLogWriter(self, stream, self.max_line_length)
        return writer

    def add_line(
        self,
        stream: str,
        message: str,
        level: int | None = None,
        logger_name: str = "",
        extra: dict | None = None,
    ) -> None:
        """Number a complete line and queue it; never raises into the task.

        What no column could hold is made safe here, for every source: NUL and lone
        surrogates in the text, a level outside the column's range. ``logger_name`` and
        ``extra`` (already JSON-safe, see ``records``) come with logging records only."""
        line_time = time.time()
        message = clean_text(message)
        level = storable_level(level)
        dropped = []
        flush_now = False
        with self._lock:
            if self._sealed:
                dropped.append((stream, message))
            else:
                rel = self._next_rel
                self._next_rel += 1
                self._pending.append((rel, line_time, stream, level, message, logger_name, extra))
                if self._oldest is None:
                    self._oldest = time.monotonic()
                    if not self.synchronous:
                        _wake_flusher()  # an idle flusher sleeps up to IDLE_WAIT: time this line
                if self.cap.max_lines:
                    self._trim_to_cap(rel)
                waiting = len(self._pending)
                if self.synchronous:
                    flush_now = waiting >= self.batch_size or self._interval_passed()
                elif waiting == self.batch_size:
                    _wake_flusher()
                if waiting >= self.buffer_lines:
                    dropped = self._make_room()
        if flush_now:
            self.flush()
        if dropped:
            self._echo(dropped)
        if self._next_rel % YIELD_EVERY == 0 and flusher_is_storing():
            # A task printing flat out holds the GIL; the flusher, back from each socket
            # write, would wait a whole switch interval (5 ms) to get it again. Letting it
            # run now and then keeps the pipeline to the database full.
            time.sleep(0)

    def _interval_passed(self) -> bool:
        return self._oldest is not None and (time.monotonic() - self._oldest >= self.flush_interval)

    def _trim_to_cap(self, newest_rel: int) -> None:
        pending = self._pending
        while pending and self.cap.discards(pending[0][0], newest_rel):
            pending.popleft()
            self._trimmed += 1

    def _make_room(self) -> list:
        """Called with the lock held and the buffer full: wait for the flusher, else drop."""
        if not self.synchronous and health.healthy:
            _wake_flusher()
            deadline = time.monotonic() + BACKPRESSURE_TIMEOUT
            while len(self._pending) >= self.buffer_lines and health.healthy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._room.wait(remaining)
        return self._drop_oldest(keep=self.buffer_lines - 1)

    def _drop_oldest(self, keep: int) -> list:
        """With the lock held: drop the oldest waiting lines down to ``keep``; they are noted as
        lost and returned as ``(stream, message)`` for the worker's own output."""
        dropped = []
        while len(self._pending) > keep:
            rel, _time, stream, _level, message, _logger, _extra = self._pending.popleft()
            self._note_lost(rel)
            dropped.append((stream, message))
        return dropped

    def _note_lost(self, first: int, last: int | None = None) -> None:
        """Remember dropped relative seqs as merged ranges: one marker explains each gap."""
        ranges = sorted([*self._lost, [first, first if last is None else last]])
        merged = [ranges[0]]
        for low, high in ranges[1:]:
            if low <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        self._lost = merged

    def _echo(self, lines: list) -> None:
        """Lines the database will never get go to the worker's own output instead."""
        if self.fallback is None:
            return
        with bypass():
            for stream, message in lines:
                if stream in (Stream.STDOUT, Stream.STDERR):
                    try:
                        self.fallback(stream, message + "\n")
                    except Exception:
                        return

    @property
    def is_open(self) -> bool:
        return self.position is not None

    def is_due(self, now: float) -> bool:
        if not self.is_open or self.closing or self._urgent or self._lost:
            return True
        oldest = self._oldest  # read once: the task's thread may be appending right now
        if len(self._pending) >= self.batch_size:
            return True
        return oldest is not None and now - oldest >= self.flush_interval

    def due_at(self) -> float | None:
        """When the oldest waiting line has waited the flush interval (monotonic time)."""
        oldest = self._oldest
        return None if oldest is None else oldest + self.flush_interval

    def take_batch(self, final: bool) -> storage.Batch:
        with self._lock:
            batch = storage.Batch(
                lines=self._pending,
                lost=self._lost,
                last_rel=self._next_rel - 1,
                trimmed=self._trimmed,
                final=final,
                unconfirmed=self.unconfirmed,
            )
            self._pending = deque()
            self._lost = []
            self._trimmed = 0
            self._oldest = None
            self._room.notify_all()
        return batch

    def give_back(self, batch: storage.Batch) -> None:
        """A failed flush returns its lines to the front; the bound still holds."""
        with self._lock:
            self._pending.extendleft(reversed(batch.lines))
            for first, last in batch.lost:
                self._note_lost(first, last)
            self._trimmed += batch.trimmed
            if self._pending:
                self._oldest = time.monotonic()
            dropped = self._drop_oldest(keep=self.buffer_lines)
        self._echo(dropped)

    def wake_waiters(self) -> None:
        with self._lock:
            self._room.notify_all()

    def flush(self, final: bool = False) -> bool:
        """Open the run if needed and store what waits; False when the database failed."""
        with self._flush_lock, bypass():
            try:
                if self.position is None:
                    self.position = storage.open_run(self.run_start(), self.alias)
                batch = self.take_batch(final)
                try:
                    self.position = storage.store_batch(
                        self.task_id, self.cap, self.position, batch, self.alias
                    )
                except BaseException:
                    self.unconfirmed = batch.sent()
                    self.give_back(batch)
                    raise
                self.unconfirmed = None
            except Exception as error:  # keep the lines and retry later
                if storage.is_unreachable(error):
                    health.failed(error)
                    if not self.synchronous:  # the caller's connection is the caller's business
                        _discard_connection(self.alias)
                else:
                    self._refused(error)
                return False
        self.last_flush = time.monotonic()
        self._refusals = 0
        self._urgent = False
        self._flushed.set()
        health.succeeded()
        if final:
            self.seal()
        return True

    def _refused(self, error: Exception) -> None:
        """A flush failed with the database reachable (refused rows are isolated earlier, so
        this is a bug or a refused ``TaskLog`` value): no reason to call the database
        unhealthy for every task, and no point retrying the same flush forever."""
        self._refusals += 1
        with bypass():
            logger.error(
                "tasklog: could not store the log of task %s (%s: %s)",
                self.task_id,
                type(error).__name__,
                error,
                exc_info=self._refusals == 1,
            )
        if self._refusals >= REFUSALS_BEFORE_GIVING_UP:
            count = self.discard_unstored()
            with bypass():
                logger.error(
                    "tasklog: gave up on the log of task %s; %s waiting lines went to the "
                    "worker's output.",
                    self.task_id,
                    count,
                )

    def flush_soon_and_wait(self, timeout: float = 5.0) -> None:
        """Have everything written so far stored now (before a retry is published)."""
        if self.synchronous:
            self.flush()
            return
        self._flushed.clear()
        self._urgent = True
        _wake_flusher()
        health.wait_while_healthy(self._flushed, timeout)

    def heartbeat(self) -> None:
        try:
            storage.touch_run(self.task_id, self.alias)
        except Exception as error:
            if storage.is_unreachable(error):
                health.failed(error)
                _discard_connection(self.alias)
            return
        self.last_flush = time.monotonic()

    def seal(self) -> None:
        with self._lock:
            self._sealed = True
        self.closed.set()

    def close_writers(self) -> None:
        """Store the unfinished last line of every stream."""
        for writer in list(self._writers.values()):
            try:
                writer.close()
            except Exception:
                with bypass():
                    logger.exception("tasklog: could not finish the last line")

    def run_start(self) -> storage.RunStart:
        return storage.RunStart(
            task_id=self.task_id,
            token=self.run_token,
            described={"task_name": self.task_name, "worker": self.worker, **self.origin},
            attempt_marker=self.attempt_marker,
        )

    def attempt_marker(self, attempt: int, previous_unfinished: bool) -> str:
        """The marker line opening attempt ``attempt`` of the task (a retry, a redelivery)."""
        reason = f" ({self.attempt_reason})" if self.attempt_reason else ""
        previous = " The previous attempt did not finish." if previous_unfinished else ""
        where = f" on {self.worker}" if self.worker else ""
        return f"Attempt {attempt}{reason} started{where}.{previous}"

    def discard_unstored(self) -> int:
        """Give up on what is still waiting (the run is over and the database is away)."""
        with self._lock:
            lines = [(line[2], line[4]) for line in self._pending]
            count = len(lines)
            self._pending.clear()
            self._sealed = True
        self._echo(lines)
        self.closed.set()
        return count


def _discard_connection(alias: str) -> None:
    with contextlib.suppress(Exception):
        connections[alias].close()
