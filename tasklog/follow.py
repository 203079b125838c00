"""Following a task's log while it is written, like ``tail -f``, until the log is complete.

The follower polls for lines after the last seq it has seen. It reads the task's state before
each read of lines, so that once the log is complete (``results.is_complete``, the rule SSE
and the JSON endpoint use too) every line has been read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .conf import settings
from .models import TaskLog, TaskLogLine
from .portable import SUCCESSFUL_STATES
from .results import effective_state, is_complete, result_for
from .search import LineFilter

__all__ = ["SUCCESSFUL_STATES", "FollowTimeout", "LogFollower"]


class FollowTimeout(Exception):
    """The task had not ended when the follower's time was up."""

    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


class LogFollower:
    """The new lines of one task, page by page, until its log is complete; ``state`` is its end."""

    def __init__(
        self,
        task_id: str,
        *,
        after: int = 0,
        poll_interval: float = 0.2,
        using: str | None = None,
        chosen: LineFilter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_id = task_id
        self.after = after
        self.chosen = chosen or LineFilter()
        self.poll_interval = poll_interval
        self.using = using or settings.DATABASE
        self.sleep = sleep
        self.clock = clock
        self.state: str | None = None

    def current_state(self) -> tuple[str, bool]:
        """The task's state and whether its log is complete, read before its lines."""
        log = TaskLog.objects.using(self.using).filter(task_id=self.task_id).first()
        result = result_for(self.task_id)
        self.stored = log.lines if log is not None else 0
        return effective_state(log, result), is_complete(log, result)

    def pages(self, timeout: float | None = None) -> Iterator[list]:
        """Pages of new lines until the log is complete; ``FollowTimeout`` after ``timeout`` s.

        With a filter, each poll starts after the last line stored when it began (a log's
        counter moves in the transaction that stores its lines), not after the last line
        shown: a rare match never makes every poll read the whole log again.
        """
        lines = TaskLogLine.objects.using(self.using).for_task(self.task_id)
        chosen_lines = lines.chosen_by(self.chosen)
        deadline = None if timeout is None else self.clock() + timeout
        while True:
            state, complete = self.current_state()
            stored = self.stored
            for page in chosen_lines.pages(self.after):
                self.after = page[-1].seq
                yield page
            self.after = max(self.after, stored)
            if complete:
                self.state = state
                return
            if deadline is not None and self.clock() >= deadline:
                raise FollowTimeout(state)
            self.sleep(self.poll_interval)
