import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasklog import search
from tasklog.follow import LogFollower
from tasklog.models import Stream, TaskLog
from tests.rows import STARTED, add_lines, make_log, many_lines

pytestmark = pytest.mark.django_db

LINES = ["one", (Stream.STDERR, "two"), "three"]


def follow(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("tasklog_follow", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def follow_error(*args) -> tuple[CommandError, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as error:
        call_command("tasklog_follow", *args, stdout=out, stderr=err)
    return error.value, out.getvalue(), err.getvalue()


def test_a_successful_task_prints_its_lines_and_exits_0():
    make_log("t1", rows=LINES)
    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    assert follow("t1") == ("one\ntwo\nthree\n", "Task t1 ended: SUCCESS.\n")


def test_tail_starts_with_the_last_lines():
    make_log("t1", rows=LINES)
    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    assert follow("t1", "--tail", "1") == ("three\n", "Task t1 ended: SUCCESS.\n")


@pytest.mark.parametrize("status", ["FAILURE", "REVOKED"])
def test_a_failed_task_exits_1(status):
    make_log("t1", rows=LINES)
    TaskResult.objects.create(task_id="t1", status=status)
    error, out, _err = follow_error("t1")
    assert (error.returncode, str(error), out) == (
        1,
        f"Task t1 ended: {status}.",
        "one\ntwo\nthree\n",
    )


def test_an_interrupted_run_exits_1():
    make_log("t1", rows=LINES, interrupted=True, finished=None)
    TaskResult.objects.create(task_id="t1", status="STARTED")
    error, _out, _err = follow_error("t1")
    assert (error.returncode, str(error)) == (1, "Task t1 ended: INTERRUPTED.")


def test_a_running_task_times_out_with_2():
    make_log("t1", rows=LINES, finished=None, last_seen=timezone.now())
    TaskResult.objects.create(task_id="t1", status="STARTED")
    error, out, _err = follow_error("t1", "--timeout", "0.01", "--interval", "0.01")
    assert (error.returncode, str(error)) == (2, "Timed out after 0.01 s; task t1 is STARTED.")
    assert out == "one\ntwo\nthree\n"


def test_a_task_that_has_not_started_is_waited_for():
    error, out, err = follow_error("later", "--timeout", "0.01", "--interval", "0.01")
    assert err == "Waiting for task later to start...\n"
    assert (error.returncode, str(error), out) == (
        2,
        "Timed out after 0.01 s; task later is PENDING.",
        "",
    )


def test_ctrl_c_ends_cleanly_with_130(monkeypatch):
    def interrupted(self, timeout=None):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(LogFollower, "pages", interrupted)
    error, _out, _err = follow_error("t1")
    assert (error.returncode, str(error)) == (130, "Interrupted.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["t1", "--tail", "-3"], "argument --tail: must be at least 0, got '-3'"),
        (["t1", "--timeout", "0"], "argument --timeout: must be greater than 0, got '0'"),
        ([], "the following arguments are required: task_id"),
    ],
)
def test_bad_arguments_are_errors(args, message):
    with pytest.raises(CommandError, match=message):
        follow(*args)


class Clock:
    """A fake clock whose sleep runs the next scripted step of a task, then moves time on."""

    def __init__(self, *steps):
        self.now = 0.0
        self.steps = list(steps)
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.steps:
            self.steps.pop(0)()


def read_all(follower: LogFollower, timeout=None) -> list[str]:
    return [line.message for page in follower.pages(timeout) for line in page]


def test_follower_waits_for_the_start_reads_new_lines_and_stops_at_the_end():
    def start():
        make_log("t1", rows=["a"], finished=None, last_seen=timezone.now())

    def write_more():
        add_lines("t1", [(Stream.STDOUT, "b"), (Stream.STDOUT, "c")], first_seq=2)

    def finish():
        add_lines("t1", [(Stream.STDOUT, "d")], first_seq=4)
        TaskLog.objects.filter(task_id="t1").update(finished=STARTED)
        TaskResult.objects.create(task_id="t1", status="SUCCESS")

    clock = Clock(lambda: None, start, write_more, finish)
    follower = LogFollower("t1", sleep=clock.sleep, clock=clock)
    assert read_all(follower) == ["a", "b", "c", "d"]
    assert (follower.state, clock.sleeps) == ("SUCCESS", 4)


def test_follower_waits_after_a_final_state_until_the_log_closes():
    """With CELERY_TASKLOG_ALL_TASKS Celery stores the final state before the last lines."""
    make_log("t1", rows=["a"], finished=None, last_seen=timezone.now())
    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    clock = Clock(
        lambda: add_lines("t1", [(Stream.STDOUT, "late")], first_seq=2),
        lambda: TaskLog.objects.filter(task_id="t1").update(finished=timezone.now()),
    )
    follower = LogFollower("t1", poll_interval=0.5, sleep=clock.sleep, clock=clock)
    assert read_all(follower) == ["a", "late"]
    assert (follower.state, clock.sleeps) == ("SUCCESS", 2)


def test_a_run_silent_for_stale_after_ends_as_interrupted_before_any_sweep(settings):
    settings.CELERY_TASKLOG_STALE_AFTER = 60
    make_log("t1", rows=LINES, finished=None, last_seen=timezone.now() - timedelta(seconds=61))
    TaskResult.objects.create(task_id="t1", status="STARTED")
    error, out, _err = follow_error("t1", "--timeout", "5")
    assert (error.returncode, str(error), out) == (
        1,
        "Task t1 ended: INTERRUPTED.",
        "one\ntwo\nthree\n",
    )
    assert TaskLog.objects.get(task_id="t1").interrupted is False  # told, not swept


def test_follower_reads_a_long_log_a_page_at_a_time():
    make_log("t1", lines=2500)
    many_lines("t1", 2500)
    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    follower = LogFollower("t1", after=100)
    assert [len(page) for page in follower.pages()] == [1000, 1000, 400]
    assert follower.after == 2500


class Recording(StringIO):
    """Standard output that notes, for every line written, whether the task was still running."""

    def __init__(self, task_id: str):
        super().__init__()
        self.task_id = task_id
        self.while_running: list[bool] = []

    def write(self, text: str) -> int:
        log = TaskLog.objects.filter(task_id=self.task_id).first()
        self.while_running.append(log is not None and log.is_running)
        return super().write(text)


@pytest.mark.integration
def test_follow_shows_lines_while_a_real_task_runs_and_exits_0(worker_factory):
    from tests.tasks import print_numbered

    worker_factory(pool="prefork", concurrency=2)
    task_id = print_numbered.delay("live", 8, 0.3).id
    out, err = Recording(task_id), StringIO()
    call_command("tasklog_follow", task_id, "--timeout", "60", stdout=out, stderr=err)
    assert out.getvalue().splitlines() == [
        "live 1 out",
        "WARNING: tests.tasks: live 2 log",
        "live 3 err",
        "live 4 out",
        "WARNING: tests.tasks: live 5 log",
        "live 6 err",
        "live 7 out",
        "WARNING: tests.tasks: live 8 log",
    ]
    assert out.while_running[0] is True
    assert err.getvalue().endswith(f"Task {task_id} ended: SUCCESS.\n")


@pytest.mark.integration
def test_follow_exits_1_when_a_real_task_fails(worker_factory):
    from example.tasks import timed_print_task

    worker_factory()
    task_id = timed_print_task.delay(count=2, interval=0.1, fail=True).id
    error, out, _err = follow_error(task_id, "--timeout", "60")
    assert (error.returncode, str(error)) == (1, f"Task {task_id} ended: FAILURE.")
    assert "\nLine 1 of 2\nLine 2 of 2\n" in out
    assert "RuntimeError: timed_print_task was told to fail after 2 lines" in out


FILTERED = [
    "one",
    (Stream.LOG, "two", 30, "app.db", {"n": 1}),
    "::group::G",
    (Stream.STDERR, "three"),
    "::endgroup::",
]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--grep", "T"], "WARNING: app.db: two n=1\n  three\n"),
        (["--grep", "^t", "--regex", "--stream", "stderr"], "  three\n"),
        (["--level", "warning"], "WARNING: app.db: two n=1\n"),
        (["--logger", "app"], "WARNING: app.db: two n=1\n"),
        ([], "one\nWARNING: app.db: two n=1\n▸ G\n  three\n◂ G: 1 line, 1.000 s\n"),
    ],
)
def test_follow_takes_the_filters_of_show(args, expected):
    make_log("t1", rows=FILTERED)
    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    assert follow("t1", *args) == (expected, "Task t1 ended: SUCCESS.\n")


def test_follow_json_writes_ndjson():
    make_log("t1", rows=FILTERED)
    TaskResult.objects.create(task_id="t1", status="SUCCESS")
    out, _err = follow("t1", "--json", "--stream", "stderr")
    [line] = [json.loads(text) for text in out.splitlines()]
    assert (line["seq"], line["message"], line["depth"], line["group"]) == (4, "three", 1, 3)


def test_a_filtered_follow_reads_each_line_once():
    """A rare match must not make every poll read the whole log again: between polls the
    follower stands after the last line stored, not after the last match."""
    make_log("t1", rows=["match", *["noise"] * 50], finished=None, last_seen=timezone.now())
    waiting_after = []

    def sleep(_seconds):
        waiting_after.append(follower.after)
        add_lines("t1", [(Stream.STDOUT, "noise"), (Stream.STDOUT, "match")], first_seq=52)
        TaskLog.objects.filter(task_id="t1").update(lines=53)

    follower = LogFollower("t1", chosen=search.line_filter(text="match"), sleep=sleep)
    pages = follower.pages(timeout=None)
    assert [line.seq for line in next(pages)] == [1]
    assert [line.seq for line in next(pages)] == [53]
    assert waiting_after == [51]
