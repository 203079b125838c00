"""Process-wide state of the capture: which run the current context writes to, and whether the
log database is reachable right now."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar

logger = logging.getLogger("tasklog")

current_capture: ContextVar = ContextVar("tasklog_current_capture", default=None)

# The run that output of this context belongs to, or None (also while tasklog writes): asked
# at every write, so the ContextVar's own C method, without a Python frame around it.
active_capture = current_capture.get


@contextmanager
def bypass():
    """Let tasklog's own work (queries, warnings) pass by the capture instead of into it: for
    its duration the context belongs to no run."""
    token = current_capture.set(None)
    try:
        yield
    finally:
        current_capture.reset(token)


class StorageHealth:
    """Whether the database is reachable: while the last write failed for want of a connection,
    output is also echoed to the worker's own streams and flushes back off (up to
    ``MAX_BACKOFF`` seconds apart, however long the outage lasts)."""

    FIRST_BACKOFF = 0.5
    MAX_BACKOFF = 5.0
    POLL = 0.05

    def __init__(self):
        self._lock = threading.Lock()
        self.healthy = True
        self.failures = 0
        self.retry_at = 0.0

    def succeeded(self) -> None:
        if not self.healthy:
            with bypass():
                logger.warning("tasklog: the log database is reachable again.")
        self.healthy = True
        self.failures = 0
        self.retry_at = 0.0

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            delay = self.backoff(self.failures)
            self.retry_at = time.monotonic() + delay
            if self.healthy:
                with bypass():
                    logger.warning(
                        "tasklog: cannot write task logs (%s); buffering and retrying.", error
                    )
            self.healthy = False

    @classmethod
    def backoff(cls, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row: doubling from
        ``FIRST_BACKOFF``, capped before the power can overflow a float."""
        doublings = min(max(failures - 1, 0), 16)
        return min(cls.FIRST_BACKOFF * 2**doublings, cls.MAX_BACKOFF)

    def wait_while_healthy(self, event: threading.Event, timeout: float) -> bool:
        """Wait for ``event``, but not for a database that just failed."""
        deadline = time.monotonic() + timeout
        while self.healthy and time.monotonic() < deadline:
            if event.wait(self.POLL):
                return True
        return event.is_set()

    def may_retry(self, now: float) -> bool:
        return self.healthy or now >= self.retry_at


health = StorageHealth()
