"""The partitioned lines table (``CELERY_TASKLOG_PARTITIONS``) on a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from io import StringIO

import psycopg
import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from tasklog import archive, partitions
from tasklog.models import TaskLog, TaskLogLine
from tasklog.tasks import prune_task_logs
from tests.rows import add_lines, make_log, many_lines
from tests.test_archive import ALIAS, archiving, stored_objects

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]


def today():
    """The UTC day now: read per use, so that a run crossing midnight checks the right day."""
    return timezone.now().date()


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def where_lines_are(task_id: str) -> dict[str, int]:
    """Partition name -> number of the task's lines stored in it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, count(*) FROM tasklog_tasklogline "
            "WHERE task_id = %s GROUP BY 1",
            [task_id],
        )
        return dict(cursor.fetchall())


def name(day: date) -> str:
    return partitions.partition_name(day, "day")


def command(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def by_day(settings):
    """The lines table partitioned by day, made plain again afterwards."""
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    yield partitions.convert("default", "day")
    if not connection.in_atomic_block:  # else the test's transaction rolls it all back
        partitions.revert("default")


def write(task_id: str, *messages: str, first_seq: int = 1) -> None:
    add_lines(task_id, [("stdout", message) for message in messages], first_seq)


def test_lines_of_a_task_go_to_the_partition_of_the_day_it_was_first_recorded(by_day):
    TaskLog.objects.create(task_id="queued-long-ago", queued=days_ago(2), last_seen=days_ago(2))
    make_log("running-since-yesterday", started=days_ago(1), finished=None)
    write("queued-long-ago", "first line, written today")
    write("running-since-yesterday", "after midnight")

    assert where_lines_are("queued-long-ago") == {name(today() - timedelta(days=2)): 1}
    assert where_lines_are("running-since-yesterday") == {name(today() - timedelta(days=1)): 1}


def test_a_duplicate_line_number_is_refused_whatever_day_it_was_written(by_day):
    make_log("task", rows=["one"], started=days_ago(3))
    with pytest.raises(IntegrityError), transaction.atomic():
        write("task", "one again")
    assert list(TaskLogLine.objects.for_task("task").values_list("seq", "message")) == [(1, "one")]


def test_conversion_keeps_every_line_and_puts_each_task_in_one_partition(settings):
    for age in (0, 1):
        make_log(f"task{age}", rows=[f"line {n}" for n in range(50)], started=days_ago(age))
    make_log("task5", started=days_ago(5))
    many_lines("task5", 2000)
    settings.CELERY_TASKLOG_PARTITIONS = "day"

    out = command("tasklog_partition", "--convert")

    assert "The lines table is partitioned by day: 2100 lines copied in" in out
    assert partitions.is_partitioned("default")
    assert where_lines_are("task5") == {name(today() - timedelta(days=5)): 2000}
    assert where_lines_are("task0") == {name(today()): 50}
    future = [name(today() + timedelta(days=n)) for n in (1, 2, 3)]
    assert all(f"{partition}  " in out for partition in future)
    out = command("tasklog_partition", "--revert")
    assert "a plain table again: 2100 lines copied" in out
    assert "The lines table is not partitioned." in out
    assert TaskLogLine.objects.count() == 2100


def test_partitions_are_created_ahead_and_a_missing_one_on_first_use(by_day):
    later = today() + timedelta(days=10)
    assert partitions.ensure_ahead("default", "day", today=later) == [
        name(later + timedelta(days=n)) for n in range(4)
    ]
    assert partitions.ensure_ahead("default", "day", today=later) == []

    # A task first recorded on a day whose partition was never made (it is dropped here):
    make_log("old", started=days_ago(20), rows=["kept"])
    assert where_lines_are("old") == {name(today() - timedelta(days=20)): 1}


def test_lines_waiting_in_the_default_partition_move_when_their_partition_is_made(by_day):
    old_day = today() - timedelta(days=30)
    make_log("late", started=days_ago(30))
    with connection.cursor() as cursor:  # as a flush that could not create the partition would
        cursor.execute(
            "INSERT INTO tasklog_tasklogline (task_id, seq, timestamp, stream, message, task_day)"
            " VALUES ('late', 1, now(), 'stdout', 'waited', %s)",
            [old_day],
        )
    assert where_lines_are("late") == {partitions.default_name(): 1}

    assert partitions.create_partition("default", old_day, "day") is True

    assert where_lines_are("late") == {name(old_day): 1}


def test_prune_drops_an_expired_partition_and_deletes_a_straddling_log_row_by_row(settings):
    settings.CELERY_TASKLOG_RETENTION_DAYS = 30
    for number in range(3):  # day -40: all expired, the partition goes whole
        make_log(f"old{number}", rows=["x"] * 5, started=days_ago(40), last_seen=days_ago(40))
    make_log("expired", rows=["y"] * 4, started=days_ago(39), last_seen=days_ago(39))
    # day -39 too, but retried days later: still alive, so its partition stays
    make_log("retried", rows=["z"] * 2, started=days_ago(39), last_seen=days_ago(1))
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    partitions.convert("default", "day")
    try:
        dry = command("tasklog_prune", "--dry-run")
        dropped = name(today() - timedelta(days=40))
        assert f"Would drop partition {dropped} (3 task logs and 15 lines)." in dry
        assert dry.endswith("Would delete 1 task log and 4 lines.\n")  # the straddling day
        assert where_lines_are("old0") == {dropped: 5}

        result = prune_task_logs.apply().get()

        kept = name(today() - timedelta(days=39))
        assert result["partitions_dropped"][0] == dropped  # then the empty days up to -31
        assert kept not in result["partitions_dropped"]
        assert len(result["partitions_dropped"]) == 9
        assert (result["logs"], result["lines"]) == (4, 19)
        ours = ["old0", "old1", "old2", "expired", "retried"]
        assert list(TaskLog.objects.for_tasks(ours).values_list("task_id", flat=True)) == [
            "retried"
        ]
        assert TaskLogLine.objects.filter(task_id__in=ours).count() == 2
        left = [partition.name for partition in partitions.partitions("default")]
        assert kept in left and dropped not in left
    finally:
        partitions.revert("default")


def test_a_log_that_comes_alive_keeps_its_partition(by_day, settings):
    make_log("old", rows=["x"], started=days_ago(40), last_seen=days_ago(40))
    [partition] = [p for p in partitions.partitions("default") if p.start < today() - timedelta(35)]
    cutoff = days_ago(30)
    TaskLog.objects.filter(task_id="old").update(last_seen=timezone.now())  # a retry started

    assert partitions.drop_partition("default", partition, cutoff) is None
    assert where_lines_are("old") == {partition.name: 1}


@pytest.mark.django_db(transaction=True)
def test_readers_see_every_line_before_during_and_after_the_conversion(settings):
    make_log("big", started=days_ago(2))
    many_lines("big", 20_000)
    settings.CELERY_TASKLOG_PARTITIONS = "day"
    dsn = {key: value for key, value in connection.get_connection_params().items()}
    seen, failures, stop = [], [], threading.Event()

    def read():
        with psycopg.connect(**dsn, autocommit=True) as reader:
            while not stop.is_set():
                try:
                    row = reader.execute(
                        "SELECT count(*), max(seq) FROM tasklog_tasklogline WHERE task_id = 'big'"
                    ).fetchone()
                    seen.append(row)
                except psycopg.Error as error:
                    failures.append(error)

    def wait_for_reads(count: int) -> int:
        while len(seen) < count and not failures:
            time.sleep(0.01)
        return len(seen)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        before = wait_for_reads(10)
        partitions.convert("default", "day")
        wait_for_reads(len(seen) + 10)
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    try:
        assert failures == []
        assert len(seen) >= before + 10
        assert set(seen) == {(20_000, 20_000)}
        assert where_lines_are("big") == {name(today() - timedelta(days=2)): 20_000}
    finally:
        partitions.revert("default")


def test_a_tasks_lines_are_read_from_its_partition_only(by_day):
    make_log("yesterday", rows=["old"], started=days_ago(1))
    make_log("today", rows=["new"], started=timezone.now())

    plan = TaskLogLine.objects.for_task("yesterday").order_by("seq").explain(analyze=True)

    assert list(TaskLogLine.objects.for_task("yesterday").values_list("message")) == [("old",)]
    scans = [line for line in plan.splitlines() if "tasklog_tasklogline_" in line]
    read = [line for line in scans if "never executed" not in line]
    assert read and all(name(today() - timedelta(days=1)) in line for line in read), plan


def test_rows_of_several_tasks_in_one_copy_each_go_to_their_tasks_partition(by_day):
    from tasklog.capture.storage import insert_rows, marker_row

    make_log("two-days", started=days_ago(2))
    make_log("today", started=timezone.now())
    with transaction.atomic():
        insert_rows(
            [
                marker_row("two-days", 1, timezone.now(), "a"),
                marker_row("today", 1, timezone.now(), "b"),
            ],
            "default",
        )

    assert where_lines_are("two-days") == {name(today() - timedelta(days=2)): 1}
    assert where_lines_are("today") == {name(today()): 1}


def test_lines_stored_before_the_conversion_are_read_while_the_setting_is_on(settings):
    make_log("before", rows=["stored unkeyed"])
    settings.CELERY_TASKLOG_PARTITIONS = "day"  # on, table not converted yet (E032)
    write("before", "stored keyed", first_seq=2)

    assert [line.message for line in TaskLogLine.objects.for_task("before")] == [
        "stored unkeyed",
        "stored keyed",
    ]


def test_the_admin_lists_the_lines_of_a_task_from_its_partition(by_day, admin_client):
    make_log("listed", rows=["first line", "second line"], started=days_ago(3))
    make_log("other", rows=["not this one"], started=days_ago(3))

    page = admin_client.get("/admin/tasklog/tasklogline/", {"task_id": "listed"}).content.decode()
    searched = admin_client.get("/admin/tasklog/tasklogline/", {"q": "listed"}).content.decode()

    for content in (page, searched):
        assert "first line" in content and "second line" in content
        assert "not this one" not in content


def test_prune_creates_a_missing_partition_ahead_and_says_so(by_day):
    third = name(today() + timedelta(days=3))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {third}")

    out = command("tasklog_prune")

    assert f"Created partition {third}.\n" in out
    assert third in [partition.name for partition in partitions.partitions("default")]


def test_dropping_a_partition_deletes_the_archives_of_its_logs(by_day, settings, tmp_path):
    """Retention by partition reaches archived logs too: their objects do not outlive them."""
    storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "archive")},
    }
    with archiving(storage):
        settings.CELERY_TASKLOG_RETENTION_DAYS = 30
        make_log("archived-old", rows=["x"] * 3, started=days_ago(40), finished=days_ago(40))
        assert archive.archive_due().logs == 1
        assert len(stored_objects(storages[ALIAS])) == 1

        result = prune_task_logs.apply().get()

        assert name(today() - timedelta(days=40)) in result["partitions_dropped"]
        assert not TaskLog.objects.filter(task_id="archived-old").exists()
        assert stored_objects(storages[ALIAS]) == []


@pytest.mark.abuse
@pytest.mark.parametrize(
    "task_id", ["x" * 100_000, "пул-🚀", "' OR 1=1 --", "a/../b", "%", "\u202e"]
)
def test_the_admins_task_filter_takes_any_task_id_on_a_partitioned_table(
    by_day, admin_client, task_id
):
    write("known", "one line")
    response = admin_client.get(
        reverse("admin:tasklog_tasklogline_changelist"), {"task_id": task_id}
    )
    assert response.status_code in (200, 302, 400)
