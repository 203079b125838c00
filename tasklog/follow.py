"""Following a task's log while it is written, like ``tail -f``, until the task has ended.

The follower polls for lines after the last seq it has seen. It reads the task's state before
each read of lines, so that when a state is final every line written before it has been read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from celery import states

from .conf import settings
from .models import TaskLog, TaskLogLine
from .reading import pages
from .results import FINISHED, effective_state, is_final, result_for

SUCCESSFUL_STATES = {states.SUCCESS, FINISHED}


class FollowTimeout(Exception):
    """The task had not ended when the follower's time was up."""

    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


class LogFollower:
    """The new lines of one task, page by page, until the task ends; then ``state`` is its end.

    A final result with a log that is still open (the worker is flushing its last lines) is
    waited for up to ``grace`` seconds.
    """

    def __init__(
        self,
        task_id: str,
        *,
        after: int = 0,
        poll_interval: float = 0.2,
        grace: float = 2.0,
        using: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_id = task_id
        self.after = after
        self.poll_interval = poll_interval
        self.grace = grace
        self.using = using or settings.DATABASE
        self.sleep = sleep
        self.clock = clock
        self.state: str | None = None

    def current_state(self) -> tuple[str, TaskLog | None]:
        log = TaskLog.objects.using(self.using).filter(task_id=self.task_id).first()
        return effective_state(log, result_for(self.task_id)), log

    def pages(self, timeout: float | None = None) -> Iterator[list]:
        """Pages of new lines until the task ends; ``FollowTimeout`` after ``timeout`` seconds."""
        lines = TaskLogLine.objects.using(self.using).for_task(self.task_id)
        deadline = None if timeout is None else self.clock() + timeout
        final_since = None
        while True:
            state, log = self.current_state()
            for page in pages(lines, self.after):
                self.after = page[-1].seq
                yield page
            if is_final(state):
                final_since = final_since if final_since is not None else self.clock()
                if log is None or not log.is_running or self.clock() - final_since >= self.grace:
                    self.state = state
                    return
            if deadline is not None and self.clock() >= deadline:
                raise FollowTimeout(state)
            self.sleep(self.poll_interval)
