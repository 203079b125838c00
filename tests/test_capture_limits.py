"""CELERY_TASKLOG_MAX_LINES and MAX_LINE_LENGTH: bounded storage and bounded memory."""

import sys
import tracemalloc

import pytest

from tasklog.capture import capture_output
from tests.utils import log_of, messages, stored

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("batch_size", [1000, 7, 1])
def test_past_the_cap_the_head_and_the_tail_are_kept_with_one_marker(settings, batch_size):
    settings.CELERY_TASKLOG_MAX_LINES = 10
    settings.CELERY_TASKLOG_BATCH_SIZE = batch_size

    with capture_output("capped", synchronous=True):
        for number in range(1, 101):
            print(f"line {number}")

    assert stored("capped") == [
        (1, "stdout", "line 1"),
        (2, "stdout", "line 2"),
        (3, "stdout", "line 3"),
        (4, "stdout", "line 4"),
        (5, "stdout", "line 5"),
        (
            6,
            "marker",
            "91 lines not stored (seq 6 to 96): CELERY_TASKLOG_MAX_LINES=10 keeps the first 5 "
            "and the last 4.",
        ),
        (97, "stdout", "line 97"),
        (98, "stdout", "line 98"),
        (99, "stdout", "line 99"),
        (100, "stdout", "line 100"),
    ]
    log = log_of("capped")
    assert (log.lines, log.dropped, log.truncated) == (100, 91, True)


def test_a_log_at_the_cap_is_not_truncated(settings):
    settings.CELERY_TASKLOG_MAX_LINES = 10

    with capture_output("at-cap", synchronous=True):
        for number in range(10):
            print(number)

    assert len(stored("at-cap")) == 10
    assert log_of("at-cap").truncated is False


def test_zero_max_lines_stores_everything(settings):
    settings.CELERY_TASKLOG_MAX_LINES = 0

    with capture_output("uncapped", synchronous=True):
        for number in range(3000):
            print(number)

    assert [seq for seq, _stream, _message in stored("uncapped")] == list(range(1, 3001))


def test_a_long_line_is_cut_with_a_visible_note(settings):
    settings.CELERY_TASKLOG_MAX_LINE_LENGTH = 20

    with capture_output("long-line", synchronous=True):
        print("x" * 25)
        print("short")

    assert messages("long-line") == ["x" * 20 + " [… 5 characters cut]", "short"]


def test_a_50_mb_line_without_newline_keeps_memory_bounded():
    chunk = "y" * 1_000_000
    with capture_output("huge-line", synchronous=True):
        tracemalloc.start()
        for _ in range(50):
            sys.stdout.write(chunk)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    assert peak < 2_000_000, "the writer must not keep the whole line"
    assert messages("huge-line") == ["y" * 10_000 + " [… 49,990,000 characters cut]"]


@pytest.mark.django_db(transaction=True)
def test_a_50_mb_line_written_in_the_background_keeps_memory_bounded_too():
    """Without a flusher to wait for, the queue of what was written must not hold the chunks."""
    with capture_output("huge-line-background") as run:
        tracemalloc.start()
        for _ in range(50):
            sys.stdout.write("y" * 1_000_000)  # a new string each time: nothing else holds it
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert run.closed.wait(10)

    assert peak < 3_000_000, "the queue must not keep the whole line"
    assert messages("huge-line-background") == ["y" * 10_000 + " [… 49,990,000 characters cut]"]


def test_long_logging_records_are_cut_too(settings):
    import logging

    settings.CELERY_TASKLOG_MAX_LINE_LENGTH = 30
    with capture_output("long-record", synchronous=True):
        logging.getLogger("tests.limits").warning("z" * 40)

    assert messages("long-record") == ["z" * 30 + " [… 10 characters cut]"]
