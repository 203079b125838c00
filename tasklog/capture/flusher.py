"""The background flusher: one thread per process stores the output of every running task.

Keeping database writes off the task's thread means a task never waits for the database (unless
it outprints it), a task's own transaction never holds its log lines, and a line printed before
a long ``sleep()`` is stored within ``FLUSH_INTERVAL``.
"""

from __future__ import annotations

import atexit
import os
import threading
import time

from .context import bypass, health, logger

HEARTBEAT_INTERVAL = 30.0
CLOSE_TIMEOUT = 10.0
IDLE_WAIT = 1.0


class Flusher:
    def __init__(self):
        self._captures: set = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.storing = False
        self._thread = threading.Thread(target=self._run, name="tasklog-flusher", daemon=True)
        self._thread.start()

    def add(self, capture) -> None:
        with self._lock:
            self._captures.add(capture)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def close(self, capture, wait: bool = True) -> None:
        """End a run: its last batch is stored before this returns, unless the database is away
        or ``wait`` is False (then the run ends at once and the flusher stores it later)."""
        capture.closing = True
        self._wake.set()
        if wait:
            health.wait_while_healthy(capture.closed, CLOSE_TIMEOUT)

    def drain(self, timeout: float) -> None:
        """Store what waits before the process exits."""
        deadline = time.monotonic() + timeout
        for capture in self._snapshot():
            if time.monotonic() >= deadline:
                return
            capture.flush(final=capture.closing)

    def _snapshot(self) -> list:
        with self._lock:
            return list(self._captures)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._seconds_to_next_due())
            self._wake.clear()
            now = time.monotonic()
            if not health.may_retry(now):
                continue
            self.storing = True
            for capture in self._snapshot():
                with bypass():
                    try:
                        self._service(capture, now)
                    except Exception:  # the flusher must survive anything
                        logger.exception("tasklog: flusher error for task %s", capture.task_id)
            self.storing = False

    def _service(self, capture, now: float) -> None:
        if capture.is_due(now):
            final = capture.closing  # read once: the task may close while this flush runs
            if not capture.flush(final=final):
                for waiting in self._snapshot():
                    waiting.wake_waiters()
            if capture.closed.is_set():  # stored to the end, or given up on
                with self._lock:
                    self._captures.discard(capture)
        elif now - capture.last_flush >= HEARTBEAT_INTERVAL:
            capture.heartbeat()

    def _seconds_to_next_due(self) -> float:
        now = time.monotonic()
        if not health.healthy:
            return max(health.retry_at - now, 0.01)
        due = [at for capture in self._snapshot() if (at := capture.due_at()) is not None]
        if not due:
            return IDLE_WAIT
        return min(max(min(due) - now, 0.0), IDLE_WAIT)


_flusher: Flusher | None = None
_flusher_pid: int | None = None
_flusher_lock = threading.Lock()


def get_flusher() -> Flusher:
    """The flusher of this process (a forked pool child starts its own)."""
    global _flusher, _flusher_pid
    if _flusher is None or _flusher_pid != os.getpid():
        with _flusher_lock:
            if _flusher is None or _flusher_pid != os.getpid():
                _flusher, _flusher_pid = Flusher(), os.getpid()
    return _flusher


def wake() -> None:
    if _flusher is not None and _flusher_pid == os.getpid():
        _flusher.wake()


def is_storing() -> bool:
    """Whether this process's flusher is writing to the database right now."""
    return _flusher is not None and _flusher.storing


def drain(timeout: float = 5.0) -> None:
    if _flusher is not None and _flusher_pid == os.getpid():
        _flusher.drain(timeout)


atexit.register(drain)
