"""Output goes to the run it belongs to: per context, never per process."""

import io
import logging
import sys
import threading

import pytest

from tasklog.capture import active_capture, capture_output, in_task_context
from tasklog.capture.streams import HANDLER_LOGGERS, TaskStreamProxy
from tasklog.models import TaskLog, TaskLogLine
from tests.utils import messages, stored

logger = logging.getLogger("tests.routing")


@pytest.mark.django_db
def test_output_outside_any_run_reaches_the_original_stream_untouched(capsys):
    with capture_output("routing-task", synchronous=True):
        print("inside")
    print("outside")
    sys.stderr.write("outside err\n")

    assert capsys.readouterr() == ("outside\n", "outside err\n")
    assert messages("routing-task") == ["inside"]


@pytest.mark.django_db
def test_nested_runs_keep_their_own_lines():
    with capture_output("outer", synchronous=True):
        print("outer before")
        with capture_output("inner", synchronous=True):
            print("inner line")
        print("outer after")

    assert messages("outer") == ["outer before", "outer after"]
    assert messages("inner") == ["inner line"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_in_threads_never_mix_lines():
    barrier = threading.Barrier(6)

    def task(number):
        with capture_output(f"thread-{number}"):
            barrier.wait()
            for line in range(300):
                print(f"task {number} line {line}")
                if line % 7 == 0:
                    logger.warning("task %s log %s", number, line)

    threads = [threading.Thread(target=task, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for number in range(6):
        expected = []
        for line in range(300):
            expected.append(f"task {number} line {line}")
            if line % 7 == 0:
                expected.append(f"task {number} log {line}")
        lines = stored(f"thread-{number}")
        assert [message for _seq, _stream, message in lines] == expected
        assert [seq for seq, _stream, _message in lines] == list(range(1, len(expected) + 1))


@pytest.mark.django_db(transaction=True)
def test_a_thread_started_in_a_task_writes_to_the_worker_output_unless_wrapped(capsys):
    with capture_output("thread-helper"):
        plain = threading.Thread(target=print, args=("from a plain thread",))
        plain.start()
        plain.join()
        wrapped = threading.Thread(target=in_task_context(print), args=("from a wrapped thread",))
        wrapped.start()
        wrapped.join()

    assert messages("thread-helper") == ["from a wrapped thread"]
    assert "from a plain thread" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_wrapped_callable_may_run_in_several_threads_at_once():
    with capture_output("pool-helper", synchronous=True):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(in_task_context(print), ["a", "b", "c", "d"]))

    assert sorted(messages("pool-helper")) == ["a", "b", "c", "d"]


@pytest.mark.django_db
def test_logging_records_are_stored_with_their_level_and_only_once():
    celery_task_logger = logging.getLogger("celery.task.tests")
    with capture_output("logging-task", synchronous=True):
        logger.warning("careful")
        logger.error("broken: %s", "disk")
        celery_task_logger.error("from the celery task logger")

    lines = [
        (line.stream, line.level_name, line.logger, line.message)
        for line in TaskLogLine.objects.for_task("logging-task").order_by("seq")
    ]
    assert lines == [
        ("log", "WARNING", "tests.routing", "careful"),
        ("log", "ERROR", "tests.routing", "broken: disk"),
        ("log", "ERROR", "celery.task.tests", "from the celery task logger"),
    ]


@pytest.mark.django_db
def test_a_logged_exception_keeps_its_traceback_as_log_lines():
    with capture_output("logged-exception", synchronous=True):
        try:
            raise ValueError("bad value")
        except ValueError:
            logger.exception("it failed")

    lines = messages("logged-exception", "log")
    assert lines[0] == "it failed"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: bad value"


@pytest.mark.django_db
def test_logging_capture_can_be_turned_off(settings, monkeypatch):
    settings.CELERY_TASKLOG_CAPTURE_LOGGING = False
    for name in HANDLER_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
    with capture_output("no-logging", synchronous=True):
        logger.warning("not stored as a log line")
        print("stored")

    assert messages("no-logging", "log") == []
    assert messages("no-logging", "stdout") == ["stored"]


@pytest.mark.django_db
def test_disabled_capture_stores_nothing_and_leaves_output_alone(settings, capsys):
    settings.CELERY_TASKLOG_ENABLED = False
    with capture_output("disabled") as capture:
        print("to the console")

    assert capture is None
    assert capsys.readouterr().out == "to the console\n"
    assert not TaskLog.objects.filter(task_id="disabled").exists()


@pytest.mark.django_db
def test_the_proxy_behaves_like_a_text_stream_inside_a_run():
    with capture_output("stream-api", synchronous=True):
        assert isinstance(sys.stdout, TaskStreamProxy)
        assert sys.stdout.isatty() is False
        assert sys.stdout.writable() is True
        assert sys.stdout.encoding
        sys.stdout.flush()
        assert sys.stdout.write("counted\n") == len("counted\n")
        assert active_capture() is not None
    assert active_capture() is None
    assert messages("stream-api") == ["counted"]


def test_fileno_is_the_original_descriptor_or_a_clear_error():
    with_descriptor = TaskStreamProxy(sys.__stdout__, "stdout")
    assert with_descriptor.fileno() == sys.__stdout__.fileno()
    without_descriptor = TaskStreamProxy(io.StringIO(), "stdout")
    with pytest.raises(io.UnsupportedOperation, match="no file descriptor"):
        without_descriptor.fileno()


@pytest.mark.django_db
def test_a_failing_writer_never_breaks_the_task(monkeypatch, capsys):
    with capture_output("broken-writer", synchronous=True) as capture:
        monkeypatch.setattr(capture, "writer", lambda *args: 1 / 0)
        print("still printed")

    assert "still printed" in capsys.readouterr().out
