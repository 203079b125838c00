"""``TerminalLoggingTask`` and ``CELERY_TASKLOG_ALL_TASKS`` store the same log (issue 11.2):
the same markers in the same order, the traceback in the same place.

The one difference, documented in docs/usage.md: with the signals Celery stores FAILURE before
``task_failure`` is sent, so the traceback arrives a moment after the state (and its frames
start in Celery's tracer rather than in the task class).
"""

from __future__ import annotations

import pytest
from celery import Celery, states
from celery.exceptions import Ignore

from tasklog.models import TaskLog
from tests import harness, tasks
from tests.utils import retried_twice_log, stored, wait_for

TRACEBACK_START = "Traceback (most recent call last):"


def without_traceback_frames(lines: list[tuple]) -> list[tuple]:
    """``(stream, message)`` of a stored log, the traceback's frames left out (its first and
    last line stay in place); seqs are checked to run from 1 without gaps."""
    assert [seq for seq, _stream, _message in lines] == list(range(1, len(lines) + 1))
    pairs = [(stream, message) for _seq, stream, message in lines]
    if ("stderr", TRACEBACK_START) not in pairs:
        return pairs
    return [*pairs[: pairs.index(("stderr", TRACEBACK_START)) + 1], pairs[-1]]


@pytest.mark.integration
def test_a_retrying_failing_task_has_the_same_log_in_both_modes(worker_factory):
    worker = worker_factory(pool="threads", concurrency=4, env={"CELERY_TASKLOG_ALL_TASKS": "1"})

    by_class = tasks.retry_twice_then_fail.delay()
    by_signals = tasks.retry_twice_then_fail_plain.delay()

    for result in (by_class, by_signals):
        assert harness.wait_for_task_result(result.id, worker=worker).status == states.FAILURE
        wait_for(lambda r=result: TaskLog.objects.finished().filter(task_id=r.id).exists())
    class_log = without_traceback_frames(stored(by_class.id))
    assert without_traceback_frames(stored(by_signals.id)) == class_log
    node = TaskLog.objects.get(task_id=by_class.id).worker
    expected = [line[1:] for line in retried_twice_log(node, "an unfinished line", countdown=1)]
    expected.append(("stderr", TRACEBACK_START))
    assert class_log[:-1] == expected
    assert class_log[-1] == ("stderr", "ValueError: failed after two retries")


app = Celery("modes", set_as_current=False)  # other modules' shared tasks stay on theirs


@app.task(bind=True, base=tasks.TerminalLoggingTask)
def ignored_by_class(self):
    print("about to be ignored")
    raise Ignore()


@app.task(bind=True)
def ignored_by_signals(self):
    print("about to be ignored")
    raise Ignore()


@pytest.mark.django_db
def test_an_ignored_run_ends_with_the_same_marker_in_both_modes(settings):
    settings.CELERY_TASKLOG_ALL_TASKS = True

    by_class = ignored_by_class.apply()
    by_signals = ignored_by_signals.apply()

    expected = [(1, "stdout", "about to be ignored"), (2, "marker", "Attempt ended: Ignore")]
    assert stored(by_class.id) == expected
    assert stored(by_signals.id) == expected


@pytest.mark.django_db
def test_an_eager_retry_has_the_same_markers_in_both_modes(settings):
    settings.CELERY_TASKLOG_ALL_TASKS = True

    by_class = tasks.retry_twice_then_fail.apply()
    by_signals = tasks.retry_twice_then_fail_plain.apply()

    class_log = without_traceback_frames(stored(by_class.id))
    assert without_traceback_frames(stored(by_signals.id)) == class_log
    node = TaskLog.objects.get(task_id=by_class.id).worker
    assert [message for stream, message in class_log if stream == "marker"] == [
        "Attempt ended: Retry in 1s",
        f"Attempt 2 (retry 1) started on {node}.",
        "Attempt ended: Retry in 1s",
        f"Attempt 3 (retry 2) started on {node}.",
    ]
