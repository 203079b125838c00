"""What a task writes becomes lines: splitting, redraws and every kind of odd input."""

import sys

import pytest

from tasklog.capture import capture_output
from tests.utils import log_of, messages, stored

pytestmark = pytest.mark.django_db


def capture(task_id="lines-task"):
    return capture_output(task_id, task_name="tests.lines", synchronous=True)


def test_prints_become_numbered_lines_across_streams_in_write_order():
    with capture():
        print("first")
        print("second", file=sys.stderr)
        sys.stdout.write("third\nfourth\n")
        sys.stdout.writelines(["fifth\n", "sixth\n"])

    assert stored("lines-task") == [
        (1, "stdout", "first"),
        (2, "stderr", "second"),
        (3, "stdout", "third"),
        (4, "stdout", "fourth"),
        (5, "stdout", "fifth"),
        (6, "stdout", "sixth"),
    ]
    log = log_of("lines-task")
    assert (log.task_name, log.lines, log.dropped, log.truncated) == ("tests.lines", 6, 0, False)
    assert log.finished is not None


def test_empty_lines_are_kept():
    with capture():
        print("a")
        print()
        print("")
        print("b")

    assert messages("lines-task") == ["a", "", "", "b"]


def test_unfinished_last_line_is_stored_when_the_run_ends():
    with capture():
        sys.stdout.write("no newline at the end")

    assert messages("lines-task") == ["no newline at the end"]


def test_unfinished_line_before_a_crash_is_stored_before_the_traceback():
    with pytest.raises(ZeroDivisionError), capture():
        sys.stdout.write("working on it... ")
        1 / 0  # noqa: B018

    lines = stored("lines-task")
    assert lines[0] == (1, "stdout", "working on it... ")
    assert [stream for _seq, stream, _message in lines[1:]] == ["stderr"] * (len(lines) - 1)
    assert lines[1][2] == "Traceback (most recent call last):"
    assert lines[-1][2] == "ZeroDivisionError: division by zero"


def test_carriage_return_keeps_the_last_state_of_a_redrawn_line():
    with capture():
        for percent in range(0, 101, 10):
            sys.stdout.write(f"\rdownloading {percent}%")
        sys.stdout.write("\n")
        print("done")

    assert messages("lines-task") == ["downloading 100%", "done"]


def test_crlf_ends_a_line_even_when_split_across_writes():
    with capture():
        sys.stdout.write("windows line\r")
        sys.stdout.write("\nnext\r\n")

    assert messages("lines-task") == ["windows line", "next"]


def test_a_progress_bar_gives_a_few_lines_not_thousands():
    with capture():
        for step in range(5000):
            sys.stderr.write(f"\r{step // 50:3d}%|{'#' * (step // 250)}| {step}/5000")
        sys.stderr.write("\n")

    assert messages("lines-task") == [f" 99%|{'#' * 19}| 4999/5000"]


def test_ansi_colour_codes_are_stored_as_written():
    with capture():
        print("\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[0m")

    assert messages("lines-task") == ["\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[0m"]


def test_nul_bytes_become_replacement_characters():
    with capture():
        print("before\x00after")

    assert messages("lines-task") == ["before\ufffdafter"]


def test_invalid_utf8_and_binary_garbage_written_as_bytes_are_decoded_not_lost():
    garbage = bytes(range(256))
    with capture():
        sys.stdout.buffer.write(b"valid \xc3\xa9 then invalid \xff\xfe end\n")
        sys.stdout.buffer.write(b"split \xe2\x82")
        sys.stdout.buffer.write(b"\xac euro\n")
        sys.stdout.buffer.write(garbage + b"\n")

    stored_messages = messages("lines-task")
    assert stored_messages[0] == "valid é then invalid \ufffd\ufffd end"
    assert stored_messages[1] == "split € euro"
    binary_lines = stored_messages[2:]
    assert "\x00" not in "".join(binary_lines)
    assert "\ufffd" in binary_lines[-1]


def test_lone_surrogates_are_replaced():
    with capture():
        print("file name \udcff here")

    assert messages("lines-task") == ["file name \ufffd here"]


def test_bytes_passed_to_the_text_stream_are_decoded():
    with capture():
        sys.stdout.write(b"bytes to a text stream\n")

    assert messages("lines-task") == ["bytes to a text stream"]


def test_unicode_is_kept():
    with capture():
        print("ünïcødé ✓ 日本語 🎉")

    assert messages("lines-task") == ["ünïcødé ✓ 日本語 🎉"]


@pytest.mark.django_db(transaction=True)
def test_the_flusher_splits_a_backlog_of_writes_as_the_task_wrote_them(settings):
    """In the background a whole backlog of writes is split at once: lines spanning writes,
    several lines in one write, over-long lines, redraws, records between prints, and each
    line's time being that of the write that ended it."""
    import logging
    import time

    settings.CELERY_TASKLOG_MAX_LINE_LENGTH = 10
    with capture_output("backlog") as run:
        sys.stdout.write("sp")
        sys.stdout.write("lit\n")
        sys.stdout.write("two\nlines\n")
        sys.stdout.write("x" * 8)
        sys.stdout.write("y" * 8 + "\n")
        logging.getLogger("tests.backlog").warning("a record")
        print("err", file=sys.stderr)
        sys.stdout.write("old\rnew\n")
        sys.stdout.write("late")
        time.sleep(0.3)
        written_late = time.time()
        sys.stdout.write(" end\n")
    assert run.closed.wait(10)

    assert stored("backlog") == [
        (1, "stdout", "split"),
        (2, "stdout", "two"),
        (3, "stdout", "lines"),
        (4, "stdout", "x" * 8 + "yy [… 6 characters cut]"),
        (5, "log", "a record"),
        (6, "stderr", "err"),
        (7, "stdout", "new"),
        (8, "stdout", "late end"),
    ]
    from tasklog.models import TaskLogLine

    times = list(
        TaskLogLine.objects.for_task("backlog").order_by("seq").values_list("timestamp", flat=True)
    )
    assert times == sorted(times)
    assert abs(times[-1].timestamp() - written_late) < 0.05
    assert times[-1].timestamp() - times[-2].timestamp() >= 0.25
