from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from tasklog.models import TaskLog, TaskLogLine
from tasklog.tasks import prune_task_logs
from tests.rows import make_log, many_lines

pytestmark = pytest.mark.django_db


def prune(*args) -> str:
    out = StringIO()
    call_command("tasklog_prune", *args, stdout=out)
    return out.getvalue()


def aged(task_id: str, days: float, lines: int = 3, **fields) -> TaskLog:
    log = make_log(task_id, rows=[f"{task_id} {n}" for n in range(lines)], **fields)
    TaskLog.objects.filter(pk=log.pk).update(last_seen=timezone.now() - timedelta(days=days))
    return log


def remaining() -> tuple[int, int]:
    return TaskLog.objects.count(), TaskLogLine.objects.count()


def test_100_000_lines_are_counted_then_deleted_in_batches():
    for number in range(20):
        aged(f"old{number}", days=40, lines=0)
        many_lines(f"old{number}", 5000)
    aged("new", days=1, lines=10)
    assert remaining() == (21, 100_010)

    assert prune("--dry-run") == "Would delete 20 task logs and 100000 lines.\n"
    assert remaining() == (21, 100_010)

    with CaptureQueriesContext(connection) as queries:
        assert prune("--batch-size", "7000") == "Deleted 20 task logs and 100000 lines.\n"
    assert remaining() == (1, 10)
    lines_table = connection.ops.quote_name("tasklog_tasklogline")
    id_batches = [q["sql"] for q in queries if f"FROM {lines_table}" in q["sql"]]
    assert len([sql for sql in id_batches if sql.endswith("LIMIT 7000")]) == 15 + 1


@override_settings(CELERY_TASKLOG_RETENTION_DAYS=5)
def test_days_default_to_the_retention_setting():
    aged("old", days=6)
    aged("new", days=4)
    assert prune() == "Deleted 1 task log and 3 lines.\n"
    assert list(TaskLog.objects.values_list("task_id", flat=True)) == ["new"]


def test_days_override_the_setting():
    aged("old", days=6)
    aged("new", days=4, lines=1)
    assert prune("--days", "3") == "Deleted 2 task logs and 4 lines.\n"


@override_settings(CELERY_TASKLOG_RETENTION_DAYS=0)
def test_zero_days_keep_logs_forever():
    aged("old", days=600)
    assert prune() == "Retention is 0 days: logs are kept forever, nothing to delete.\n"
    assert prune("--days", "0") == (
        "Retention is 0 days: logs are kept forever, nothing to delete.\n"
    )
    assert remaining() == (1, 3)


def test_task_ids_are_deleted_whatever_their_age():
    aged("a", days=0)
    aged("b", days=0)
    aged("c", days=0)
    assert prune("--task-id", "a", "--task-id", "c", "--dry-run") == (
        "Would delete 2 task logs and 6 lines.\n"
    )
    assert prune("--task-id", "a", "--task-id", "c") == "Deleted 2 task logs and 6 lines.\n"
    assert list(TaskLog.objects.values_list("task_id", flat=True)) == ["b"]
    assert prune("--task-id", "a") == "Deleted 0 task logs and 0 lines.\n"


def test_task_ids_with_days_are_only_those_old_enough():
    aged("a", days=10)
    aged("b", days=1)
    assert prune("--task-id", "a", "--task-id", "b", "--days", "5") == (
        "Deleted 1 task log and 3 lines.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "-1"], "argument --days: must be at least 0, got '-1'"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got '0'"),
        (["--days", "soon"], "argument --days: must be a number, got 'soon'"),
        (["--days", "9999999999"], "argument --days: must be at most 36500, got '9999999999'"),
        (["--days", "nan"], "argument --days: must be a number, got 'nan'"),
        (["--days", "inf"], "argument --days: must be at most 36500, got 'inf'"),
        (["--days", "1" * 5000], r"must be at most 36500, got '111.*\(5002 chars\)"),
        (["--batch-size", "1e30"], "argument --batch-size: must be at most 2147483647"),
    ],
)
@pytest.mark.abuse
def test_bad_arguments_are_errors(args, message):
    with pytest.raises(CommandError, match=message):
        prune(*args)


@override_settings(CELERY_TASKLOG_RETENTION_DAYS=30, CELERY_TASKLOG_STALE_AFTER=600)
def test_the_prune_task_deletes_expired_logs_and_closes_dead_runs():
    aged("expired", days=31)
    aged("dead", days=0.01, finished=None)  # silent for 864 s
    aged("quiet", days=0.001, finished=None)  # silent for 86 s
    aged("done", days=0.01)
    assert prune_task_logs.apply(kwargs={"batch_size": 2}).get() == {
        "interrupted": 1,
        "never_started": 0,
        "archived_logs": 0,
        "archived_lines": 0,
        "archive_error": "",
        "logs": 1,
        "lines": 3,
        "partitions_created": [],  # CELERY_TASKLOG_PARTITIONS is off
        "partitions_dropped": [],
    }
    dead = TaskLog.objects.get(task_id="dead")
    assert (dead.interrupted, dead.finished is not None) == (True, True)
    assert TaskLog.objects.running().get().task_id == "quiet"
    assert not TaskLog.objects.filter(task_id="expired").exists()


@override_settings(CELERY_TASKLOG_RETENTION_DAYS=30, CELERY_TASKLOG_STALE_AFTER=600)
def test_the_command_closes_dead_runs_too_and_says_so():
    aged("dead", days=0.01, finished=None)  # silent for 864 s
    aged("also-dead", days=0.02, finished=None)
    aged("quiet", days=0.001, finished=None)  # silent for 86 s

    assert prune("--dry-run") == (
        "Would close 2 runs as interrupted (silent for more than 600 s: the worker died).\n"
        "Would delete 0 task logs and 0 lines.\n"
    )
    assert TaskLog.objects.running().count() == 3

    assert prune() == (
        "Closed 2 runs as interrupted (silent for more than 600 s: the worker died).\n"
        "Deleted 0 task logs and 0 lines.\n"
    )
    assert list(TaskLog.objects.running().values_list("task_id", flat=True)) == ["quiet"]
    assert TaskLog.objects.filter(interrupted=True).count() == 2
    assert prune() == "Deleted 0 task logs and 0 lines.\n"
