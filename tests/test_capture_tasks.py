"""Celery runs: the task base class, eager runs, nesting, retries and signal-wide capture."""

import pytest
from celery import states

from tests import tasks
from tests.utils import log_of, messages, retried_twice_log, stored

pytestmark = pytest.mark.django_db


def test_an_eager_run_is_captured():
    result = tasks.print_numbered.apply(args=("eager", 3))

    assert result.get() == 3
    assert messages(result.id) == ["eager 1 out", "eager 2 log", "eager 3 err"]
    log = log_of(result.id)
    assert log.task_name == "tests.tasks.print_numbered"
    assert (log.lines, log.attempts, log.finished is not None) == (3, 1, True)


def test_a_task_called_directly_is_not_captured(capsys):
    assert tasks.print_numbered("direct", 1) == 1
    assert capsys.readouterr().out == "direct 1 out\n"


def test_an_eager_run_inside_a_task_writes_to_its_own_log():
    result = tasks.call_inner_eagerly.apply()

    inner_id = result.get()
    assert messages(result.id) == ["outer before", "outer after"]
    assert messages(inner_id) == ["inner 1 out", "inner 2 log", "inner 3 err"]


def test_a_failing_task_stores_its_traceback_on_stderr():
    result = tasks.fail_after_printing.apply(args=(2,))

    assert result.state == states.FAILURE
    lines = stored(result.id)
    assert lines[:2] == [(1, "stdout", "step 1"), (2, "stdout", "step 2")]
    assert lines[2] == (3, "stderr", "Traceback (most recent call last):")
    assert lines[-1] == (len(lines), "stderr", "RuntimeError: the task failed on purpose")


def test_retries_continue_one_gap_free_log_with_a_marker_per_attempt():
    result = tasks.retry_twice.apply()

    assert result.get() == "done after two retries"
    assert stored(result.id) == retried_twice_log(log_of(result.id).worker)
    log = log_of(result.id)
    assert (log.attempts, log.lines, log.dropped) == (3, 10, 0)


def test_all_tasks_setting_captures_tasks_without_the_base_class(settings):
    settings.CELERY_TASKLOG_ALL_TASKS = True

    result = tasks.plain_task.apply()

    assert result.get() == "plain"
    assert messages(result.id) == ["printed by a task without the tasklog base class"]


def test_all_tasks_setting_stores_the_traceback_of_a_failing_task(settings):
    settings.CELERY_TASKLOG_ALL_TASKS = True

    result = tasks.plain_task.apply(kwargs={"fail": True})

    assert result.state == states.FAILURE
    lines = messages(result.id)
    assert lines[0] == "printed by a task without the tasklog base class"
    assert lines[-1] == "ValueError: plain task failed"


def test_tasks_without_the_base_class_are_not_captured_by_default():
    result = tasks.plain_task.apply()

    assert result.get() == "plain"
    assert stored(result.id) == []


def test_an_app_whose_default_task_class_is_the_base_captures_every_task():
    from celery import Celery

    # Not the current app: shared tasks of later tests would bind to it and be captured.
    app = Celery(
        "captures-everything", task_cls="tasklog.tasks:TerminalLoggingTask", set_as_current=False
    )

    @app.task
    def report():
        print("captured through the app's task class")

    result = report.apply()

    assert messages(result.id) == ["captured through the app's task class"]


def test_two_runs_of_one_task_storing_at_once_number_their_lines_one_after_the_other():
    from tasklog.capture import TaskCapture

    first = TaskCapture("racing", synchronous=True)
    first.add_line("stdout", "first run, line 1")
    assert first.flush()
    second = TaskCapture("racing", synchronous=True, attempt_reason="redelivered")
    second.add_line("stdout", "second run, line 1")
    assert second.flush()
    first.add_line("stdout", "first run, line 2")
    assert first.flush(final=True)
    second.add_line("stdout", "second run, line 2")
    assert second.flush(final=True)

    assert stored("racing") == [
        (1, "stdout", "first run, line 1"),
        (2, "marker", "Attempt 2 (redelivered) started. The previous attempt did not finish."),
        (3, "stdout", "second run, line 1"),
        (4, "stdout", "first run, line 2"),
        (5, "stdout", "second run, line 2"),
    ]
    assert log_of("racing").lines == 5
