"""One run of one task: numbering, buffering, the line cap, and the hand-over to storage.

Lines are numbered relative to the run while they wait in memory; the flush turns them into
the log's ``seq`` under a row lock (``storage.store_batch``). Memory is bounded: past
``BUFFER_LINES`` waiting lines the writing task waits for the flusher while the database is
healthy, and the oldest lines are dropped (counted, echoed, marked) while it is not.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator

from django.db import connections

from ..conf import settings
from ..models import Stream
from . import storage
from .cap import Cap
from .context import bypass, health, logger
from .flusher import is_storing as flusher_is_storing
from .flusher import wake as _wake_flusher
from .lines import DBLogWriter, clean_text, storable_level

_now = time.time
BACKPRESSURE_TIMEOUT = 5.0
REFUSALS_BEFORE_GIVING_UP = 3  # flushes in a row failing for a reason other than the connection
RAW_ITEMS = 3  # a write's items in the queue of what was written: writer, text, time
YIELD_EVERY = RAW_ITEMS * 128  # between two chances for the flusher to take the GIL
YIELD_WINDOW = RAW_ITEMS * 2  # a print() is two writes: one of them ends its line


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
        # Reentrant for the Condition's sake: with a plain Lock, ``notify`` tests ownership by
        # a failed ``acquire(False)``, and under gevent that failure yields. The flusher then
        # slept holding the lock, and the greenlets of a task, blocked on it one after the
        # other mid-print(), glued their lines ('greenlet 0 line 1greenlet 1 line 1').
        self._lock = threading.RLock()
        self._room = threading.Condition(self._lock)
        self._raw: list = []  # (writer or None, text or line, unix time), as written
        # Counted in writes, not lines (a print() is two writes): the flusher is woken at
        # ``_raw_wake``, the task splits what waits itself at ``_raw_limit`` (a full buffer).
        # A synchronous run splits at every write, to flush from the task's thread when due.
        self._raw_wake = RAW_ITEMS * 2 * self.batch_size
        self._raw_limit = 0 if synchronous else RAW_ITEMS * 2 * self.buffer_lines
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
        key = stream if source == "python" else (stream, source)
        writer = self._writers.get(key)
        if writer is None:
            writer = self._writers[key] = DBLogWriter(self, stream, self.max_line_length)
        return writer

    def forget_writer(self, closed: DBLogWriter) -> None:
        """A writer was closed: its stream's next write starts a new one (so a write need not
        ask ``closed``, an IOBase lookup each time)."""
        for key, writer in list(self._writers.items()):
            if writer is closed:
                del self._writers[key]

    def write(self, stream: str, text: str) -> int:
        """``sys.stdout.write(text)`` (or stderr) inside the run: the hot path of a print(),
        with ``arrive`` written out (the calls cost ~0.08 µs of ~1.2, docs/performance.md)."""
        writer = self._writers.get(stream)
        if writer is None:
            writer = self.writer(stream)
        raw = self._raw
        raw.extend((writer, text, _now()))
        count = len(raw)
        if count >= self._raw_limit or count == self._raw_wake or self._oldest is None:
            self._after_arrival(count)
        elif count % YIELD_EVERY < YIELD_WINDOW:
            self._let_the_flusher_run(writer, text)
        length = len(text)
        if length > self.max_line_length:
            self.split_now()
        return length

    def split_now(self) -> None:
        """Split what waits at once: a write longer than a line may be is cut now, so that the
        queue never holds more than ``BUFFER_LINES`` lines of ``MAX_LINE_LENGTH``."""
        with self._lock:
            dropped = self._digest()
        if dropped:
            self._echo(dropped)

    def arrive(self, writer: DBLogWriter | None, written) -> None:
        """Queue what was written, as it is, with its time: the whole of a task's own work per
        ``write()``. ``writer`` splits the text into lines later (``None`` for the end of its
        stream); ``None`` as writer brings one complete line (``add_line``). Never raises into
        the task.

        One flat list of ``writer, written, time`` triples: ``extend`` adds a triple at once
        (whatever other thread writes), and nothing is left for the garbage collector to
        walk (a tuple per write would be, and costs about a microsecond a line). ``write``
        repeats these lines on purpose: calling it cost ~0.08 µs of a print's ~1.2."""
        raw = self._raw
        raw.extend((writer, written, _now()))
        count = len(raw)
        if count >= self._raw_limit or count == self._raw_wake or self._oldest is None:
            self._after_arrival(count)
        elif count % YIELD_EVERY < YIELD_WINDOW:
            self._let_the_flusher_run(writer, written)

    @staticmethod
    def _let_the_flusher_run(writer: DBLogWriter | None, written) -> None:
        """A task printing flat out holds the GIL; the flusher, back from each socket write,
        would wait a whole switch interval (5 ms) to get it again. Letting it run now and then
        keeps the pipeline to the database full. Only at the end of a line: under gevent the
        sleep switches greenlets, and another greenlet of the task must not write into the
        middle of this one's print()."""
        if (writer is None or written.endswith("\n")) and flusher_is_storing():
            time.sleep(0)

    def add_line(
        self,
        stream: str,
        message: str,
        level: int | None = None,
        logger_name: str = "",
        extra: dict | None = None,
    ) -> None:
        """Queue a complete line (a logging record, a marker); never raises into the task.

        What no column could hold is made safe here, for every source: NUL and lone
        surrogates in the text (written text is cleaned when it is split), a level outside the
        column's range. ``logger_name`` and ``extra`` (already JSON-safe, see ``records``)
        come with logging records only."""
        line = (stream, storable_level(level), clean_text(message), logger_name, extra)
        self.arrive(None, line)

    def _after_arrival(self, count: int) -> None:
        """The rarer work after a write: the first line of a batch, a batch's worth waiting,
        a full buffer, a synchronous run, a sealed run."""
        dropped = []
        flush_now = False
        with self._lock:
            if self._oldest is None:
                self._oldest = time.monotonic()
                if not self.synchronous:
                    _wake_flusher()  # an idle flusher sleeps up to IDLE_WAIT: time this write
            if count >= self._raw_limit:
                self._wait_for_room()
                dropped = self._digest()
                waiting = len(self._pending)
                if self.synchronous:
                    flush_now = waiting >= self.batch_size or self._interval_passed()
                if waiting >= self.buffer_lines:
                    dropped += self._drop_oldest(keep=self.buffer_lines - 1)
            elif count == self._raw_wake:
                _wake_flusher()
        if flush_now:
            self.flush()
        if dropped:
            self._echo(dropped)

    def _digest(self) -> list:
        """With the lock held: split and number what was written so far, in the order it was
        written. Returns the lines of a sealed run as ``(stream, message)`` (to echo)."""
        raw = self._raw
        taken = raw[: len(raw)]
        del raw[: len(taken)]  # a write arriving meanwhile is appended after these
        writers, written, times = taken[0::3], taken[1::3], taken[2::3]
        lines = []  # (rel, unix_time, stream, level, message, logger, extra)
        for writer, start, end in _runs(writers):
            rels = itertools.count(self._next_rel + len(lines))  # zip stops at the lines' end
            if writer is None:
                lines += [
                    (rel, moment, *line)
                    for rel, line, moment in zip(
                        rels, written[start:end], times[start:end], strict=False
                    )
                ]
            else:
                stream = writer.stream
                ends, found = writer.split(written[start:end], times[start:end])
                lines += [
                    (rel, moment, stream, None, text, "", None)
                    for rel, moment, text in zip(rels, ends, found, strict=False)
                ]
        if self._sealed:
            return [(line[2], line[4]) for line in lines]
        self._next_rel += len(lines)
        self._pending += lines
        if self.cap.max_lines and lines:
            self._trim_to_cap(self._next_rel - 1)
        return []

    def _interval_passed(self) -> bool:
        return self._oldest is not None and (time.monotonic() - self._oldest >= self.flush_interval)

    def _trim_to_cap(self, newest_rel: int) -> None:
        pending = self._pending
        while pending and self.cap.discards(pending[0][0], newest_rel):
            pending.popleft()
            self._trimmed += 1

    def _wait_for_room(self) -> None:
        """Called with the lock held and the buffer full: wait for the flusher (backpressure),
        up to ``BACKPRESSURE_TIMEOUT``, while the database is healthy. What is still too much
        then is dropped, oldest first."""
        if self.synchronous or self._sealed or not health.healthy:
            return
        _wake_flusher()
        deadline = time.monotonic() + BACKPRESSURE_TIMEOUT
        while self._is_full() and health.healthy:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._room.wait(remaining)

    def _is_full(self) -> bool:
        return len(self._raw) >= self._raw_limit or len(self._pending) >= self.buffer_lines

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
        if len(self._pending) >= self.batch_size or len(self._raw) >= self._raw_wake:
            return True
        return oldest is not None and now - oldest >= self.flush_interval

    def due_at(self) -> float | None:
        """When the oldest waiting line has waited the flush interval (monotonic time)."""
        oldest = self._oldest
        return None if oldest is None else oldest + self.flush_interval

    def take_batch(self, final: bool) -> storage.Batch:
        with self._lock:
            self._digest()
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
            self._raw_limit = 0  # every later write takes the way that echoes it
        self.closed.set()

    def close_writers(self) -> None:
        """Store the unfinished last line of every stream."""
        for writer in list(self._writers.values()):
            try:
                writer.close()
            except Exception:
                with bypass():
                    logger.exception("tasklog: could not finish the last line")
        self._writers.clear()

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
            lines = self._digest() + [(line[2], line[4]) for line in self._pending]
            count = len(lines)
            self._pending.clear()
            self._sealed = True
            self._raw_limit = 0
        self._echo(lines)
        self.closed.set()
        return count


def _runs(writers: list) -> Iterator[tuple]:
    """``(writer, start, end)`` of each run of consecutive writes by the same writer."""
    if writers and writers.count(writers[0]) == len(writers):  # the usual case: one stream
        yield writers[0], 0, len(writers)
        return
    start = 0
    for end in range(1, len(writers) + 1):
        if end == len(writers) or writers[end] is not writers[start]:
            yield writers[start], start, end
            start = end


def _discard_connection(alias: str) -> None:
    with contextlib.suppress(Exception):
        connections[alias].close()
