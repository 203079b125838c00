"""Tasks the test suite runs in real workers and eagerly."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import time

from celery import shared_task

from tasklog.capture import in_task_context
from tasklog.tasks import TerminalLoggingTask

logger = logging.getLogger(__name__)


@shared_task(bind=True, base=TerminalLoggingTask)
def print_numbered(self, label: str, count: int, delay: float = 0.0):
    """Print ``count`` numbered lines mixing stdout, stderr and logging, as a busy task would."""
    for number in range(1, count + 1):
        if number % 3 == 0:
            print(f"{label} {number} err", file=sys.stderr)
        elif number % 3 == 1:
            print(f"{label} {number} out")
        else:
            logger.warning("%s %s log", label, number)
        if delay:
            time.sleep(delay)
    return count


@shared_task(bind=True, base=TerminalLoggingTask)
def fail_after_printing(self, lines: int = 3):
    for number in range(1, lines + 1):
        print(f"step {number}")
    raise RuntimeError("the task failed on purpose")


@shared_task(bind=True, base=TerminalLoggingTask, max_retries=3)
def retry_twice(self):
    print(f"attempt with retries={self.request.retries}")
    print("second line of this attempt", file=sys.stderr)
    if self.request.retries < 2:
        raise self.retry(countdown=0)
    return "done after two retries"


@shared_task(bind=True, base=TerminalLoggingTask)
def call_inner_eagerly(self):
    print("outer before")
    inner = print_numbered.apply(args=("inner", 3))
    print("outer after")
    return inner.id


@shared_task(bind=True)
def plain_task(self, fail: bool = False):
    print("printed by a task without the tasklog base class")
    if fail:
        raise ValueError("plain task failed")
    return "plain"


@shared_task(bind=True, base=TerminalLoggingTask)
def print_bad_input(self):
    """Every kind of odd output a real task produces."""
    print("nul\x00byte")
    sys.stdout.buffer.write(b"invalid \xff\xfe utf-8\n")
    sys.stdout.buffer.write(bytes(range(256)) + b"\n")
    print("\x1b[31mred\x1b[0m")
    for percent in range(0, 101, 5):
        sys.stdout.write(f"\rprogress {percent}%")
    sys.stdout.write("\n")
    print("")
    print("x" * 200_000)
    print("<script>alert(1)</script>")
    sys.stdout.write("unfinished last line")
    return "ok"


def print_lines_slowly(count: int, interval: float) -> int:
    """Print ``count`` numbered lines, one every ``interval`` seconds, with the time of print."""
    for number in range(1, count + 1):
        print(f"line {number} at {time.time():.3f}")
        time.sleep(interval)
    return count


@shared_task(bind=True, base=TerminalLoggingTask)
def print_slowly(self, count: int, interval: float):
    return print_lines_slowly(count, interval)


@shared_task(bind=True, base=TerminalLoggingTask, acks_late=True)
def print_slowly_acknowledged_late(self, count: int, interval: float):
    """``print_slowly`` acknowledged when it ends: the broker redelivers it if the worker dies."""
    return print_lines_slowly(count, interval)


@shared_task(bind=True, base=TerminalLoggingTask)
def write_from_a_child_process(self):
    """Output that bypasses ``sys.stdout``: a child process and a raw descriptor write."""
    print("python print")
    subprocess.run(["echo", "from a child process"], check=True)
    os.write(2, b"raw write to descriptor 2\n")
    return "ok"


@shared_task(bind=True, base=TerminalLoggingTask)
def call_tasks_in_a_transaction(self, group: str):
    """Inside its own transaction, call a task directly and eagerly: the transaction must
    survive both (it commits ``group``). Returns the eager run's id."""
    from django.contrib.auth.models import Group
    from django.db import transaction

    with transaction.atomic():
        Group.objects.create(name=group)
        print("before")
        print_numbered("direct", 1)
        inner = print_numbered.apply(args=("eager", 1))
        print("after")
        assert Group.objects.filter(name=group).exists()
    return inner.id


def _retry_twice_then_fail(task):
    print(f"attempt with retries={task.request.retries}")
    sys.stderr.write("an unfinished line")
    if task.request.retries < 2:
        raise task.retry(countdown=1)
    raise ValueError("failed after two retries")


@shared_task(bind=True, base=TerminalLoggingTask, max_retries=3)
def retry_twice_then_fail(self):
    """Two retries, then a failure: markers and traceback, under ``TerminalLoggingTask``."""
    _retry_twice_then_fail(self)


@shared_task(bind=True, max_retries=3)
def retry_twice_then_fail_plain(self):
    """The same without the base class: captured by ``CELERY_TASKLOG_ALL_TASKS`` alone."""
    _retry_twice_then_fail(self)


@shared_task(bind=True, base=TerminalLoggingTask)
def write_fuzzed(self, item_list):
    """Write what ``tests.writer_model`` generated, as a task would."""
    from tests.writer_model import write_items

    write_items(item_list)


@shared_task(bind=True, base=TerminalLoggingTask)
def print_from_greenlets(self, library: str, label: str, greenlets: int, count: int):
    """Print from ``greenlets`` greenlets spawned with ``library`` (gevent or eventlet), each
    wrapped by ``in_task_context``, yielding after every line so that they interleave."""
    green = importlib.import_module(library)

    def print_lines(number: int) -> None:
        for line in range(1, count + 1):
            print(f"{label} greenlet {number} line {line}")
            green.sleep(0)

    spawned = [green.spawn(in_task_context(print_lines), number) for number in range(greenlets)]
    for greenlet in spawned:
        greenlet.get() if library == "gevent" else greenlet.wait()
    return greenlets * count


@shared_task(bind=True)
def plain_burst(self, count: int):
    """A task without the tasklog base class whose lines all come in its last moment."""
    for number in range(1, count + 1):
        print(f"burst {number}")
    return count


@shared_task(bind=True, base=TerminalLoggingTask)
def log_in_groups(self):
    """Nested groups, logging records with extra fields from two loggers, an error inside."""
    import tasklog

    print("before the groups")
    with tasklog.group("Build"):
        logging.getLogger("tests.build").info(
            "compiled", extra={"files": 3, "target": "x86 64", "obj": object.__name__}
        )
        with tasklog.group("Link"):
            logging.getLogger("tests.build.linker").error("undefined symbol")
    logging.getLogger("other").warning("outside")
    return "grouped"
