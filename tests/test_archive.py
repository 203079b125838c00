"""Archive to object storage (``tasklog.archive``): against the filesystem storage and a real
S3-compatible HTTP server (moto in server mode, ``S3_ENDPOINT_URL`` from with_services.py)
through django-storages' S3 backend."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
import tracemalloc
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklog import archive, conf, live
from tasklog.checks import check_archive, check_settings
from tasklog.models import Stream, TaskLog, TaskLogLine
from tasklog.querysets import TaskLogLineQuerySet
from tasklog.tasks import prune_task_logs
from tests import harness
from tests.rows import add_lines, many_lines

ALIAS = "tasklog_archive"
ROWS = [
    (Stream.STDOUT, "::group::Build"),
    (Stream.STDOUT, "héllo wörld 🙂"),
    (Stream.STDERR, "an error line\nwith a second line"),
    (Stream.LOG, "disk almost full", 30, "app.disk", {"free": 3}),
    (Stream.STDOUT, "::endgroup::"),
    (Stream.LOG, "it broke", 40, "app", None),
    (Stream.STDOUT, "<script>alert(1)</script>"),
    (Stream.STDOUT, "\x1b[31mred\x1b[0m"),
    (Stream.MARKER, "Attempt 2 started after a retry"),
    (Stream.STDOUT, "last line"),
]


def s3_endpoint() -> str:
    url = os.environ.get("S3_ENDPOINT_URL")
    if not url:
        harness.service_missing("S3 tests need moto's server: run them through with_services.py")
    return url


def s3_options(endpoint: str, bucket: str) -> dict:
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "access_key": "testing",
            "secret_key": "testing",
            "region_name": "us-east-1",
            "addressing_style": "path",
            "max_memory_size": 2**20,  # a downloaded object spills to disk beyond 1 MiB
            "client_config": Config(
                retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10
            ),
        },
    }


def make_bucket(endpoint: str, bucket: str | None = None) -> str:
    import boto3

    bucket = bucket or f"tasklog-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    return bucket


def archiving(storage: dict, after_days: int = 7):
    return override_settings(
        STORAGES={**django_settings.STORAGES, ALIAS: storage},
        CELERY_TASKLOG_ARCHIVE={"storage": ALIAS, "after_days": after_days},
        CELERY_TASKLOG_RETENTION_DAYS=30,
    )


@pytest.fixture(params=["filesystem", "s3"])
def storage_config(request, tmp_path) -> dict:
    if request.param == "filesystem":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "archive")},
        }
    endpoint = s3_endpoint()
    return s3_options(endpoint, make_bucket(endpoint))


@pytest.fixture
def archive_on(storage_config):
    with archiving(storage_config):
        yield storages[ALIAS]


def finished_log(task_id: str = "archived-1", rows=ROWS, days: float = 10) -> TaskLog:
    """A log finished (and last written) ``days`` ago: due for the archive after 7 days."""
    moment = timezone.now() - timedelta(days=days)
    log = TaskLog.objects.create(
        task_id=task_id,
        task_name="tests.tasks.print_numbered",
        started=moment - timedelta(seconds=5),
        finished=moment,
        last_seen=moment,
        lines=len(rows),
    )
    add_lines(task_id, rows)
    return log


def stored_objects(storage) -> list[str]:
    """Every object name under the archive's prefix."""
    names = []
    try:
        top_dirs, _files = storage.listdir(archive.PREFIX)
    except FileNotFoundError:
        return []
    for directory in top_dirs:
        _dirs, files = storage.listdir(f"{archive.PREFIX}/{directory}")
        names += [f"{archive.PREFIX}/{directory}/{name}" for name in files]
    return names


JSON_QUERIES = [
    {},
    {"after": "2", "limit": "3"},
    {"before": "8", "limit": "2"},
    {"q": "LINE"},  # SQLite folds ASCII only: the archive (Python) folds all, as PostgreSQL
    {"q": "e.r+or", "regex": "1"},
    {"stream": "stderr"},
    {"level": "warning"},
    {"logger": "app"},
    {"around": "5", "context": "1", "q": "line"},
]


def readers_output(client, task_id: str) -> dict:
    """What every reader shows of a log, without the task header (which says "archived")."""
    output = {}
    lines_url = reverse("tasklog:task_log_lines", args=[task_id])
    for query in JSON_QUERIES:
        response = client.get(lines_url, query)
        assert response.status_code == 200, response.content
        body = response.json()
        body.pop("task")
        output[f"json {query}"] = body
    download = client.get(reverse("tasklog:task_log_download", args=[task_id]))
    output["download"] = b"".join(download.streaming_content).decode()
    events = client.get(reverse("tasklog:task_log_events", args=[task_id])).content.decode()
    output["sse"] = [event for event in events.split("\n\n") if not event.startswith("event: end")]
    output["sse ends"] = "event: end" in events
    for options in ([], ["--json"], ["--grep", "line", "--context", "1"], ["--tail", "3"]):
        out = StringIO()
        call_command("tasklog_show", task_id, *options, stdout=out)
        output[f"show {options}"] = re.sub(r"(?m)^Archived .*\n", "", out.getvalue())
    out = StringIO()
    call_command("tasklog_follow", task_id, "--timeout", "5", stdout=out, stderr=StringIO())
    output["follow"] = out.getvalue()
    return output


@pytest.mark.django_db
def test_archived_logs_read_as_before_through_every_reader(archive_on, reader):
    log = finished_log()
    before = readers_output(reader, log.task_id)

    result = prune_task_logs.apply().get()

    assert (result["archived_logs"], result["archived_lines"], result["archive_error"]) == (
        1,
        len(ROWS),
        "",
    )
    log.refresh_from_db()
    assert log.archived is not None
    assert log.archive_name == archive.object_name(log.task_id)
    assert not TaskLogLine.objects.filter(task_id=log.task_id).exists()
    assert readers_output(reader, log.task_id) == before
    lines_url = reverse("tasklog:task_log_lines", args=[log.task_id])
    assert reader.get(lines_url).json()["task"]["archived"] == log.archived.isoformat()
    page = reader.get(reverse("tasklog:task_log", args=[log.task_id])).content.decode()
    assert "héllo wörld" in page and "&lt;script&gt;" in page and "<script>alert" not in page
    out = StringIO()
    call_command("tasklog_show", log.task_id, stdout=out)
    assert re.search(r"(?m)^Archived +\d{4}-", out.getvalue())


@pytest.mark.django_db
def test_an_archived_retried_logs_page_ships_the_same_attempt_markers(archive_on):
    rows = [
        (Stream.STDOUT, "first"),
        (Stream.MARKER, "Attempt ended: Retry in 1s"),
        (Stream.MARKER, "Attempt 2 (retry) started on celery@w1."),
        (Stream.STDOUT, "::group::Build"),
        (Stream.STDOUT, "second"),
    ]
    log = finished_log("archived-retried", rows=rows)
    TaskLog.objects.filter(task_id=log.task_id).update(attempts=2)
    log.refresh_from_db()
    before = live.attempt_markers(log.task_id, log)
    assert [(line["seq"], line["kind"]) for line in before] == [(2, "line"), (3, "attempt")]

    prune_task_logs.apply().get()

    log.refresh_from_db()
    assert log.archive_name and not TaskLogLine.objects.filter(task_id=log.task_id).exists()
    assert live.attempt_markers(log.task_id, log) == before


def test_the_admin_shows_an_archived_log_and_its_last_lines(archive_on, admin_client):
    log = finished_log()
    archive.archive_due()
    page = admin_client.get(reverse("admin:tasklog_tasklog_change", args=[log.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "last line" in text and "héllo wörld" in text
    assert archive.object_name(log.task_id) in text


@pytest.mark.django_db
def test_the_object_is_gzip_ndjson_with_the_header_then_one_line_a_row(archive_on):
    log = finished_log()
    archive.archive_due()
    with archive_on.open(archive.object_name(log.task_id), "rb") as stored:
        records = [json.loads(line) for line in gzip.decompress(stored.read()).splitlines()]
    assert records[0]["tasklog_archive"] == archive.FORMAT
    assert records[0]["task"]["task_id"] == log.task_id
    assert "share_secret" not in records[0]["task"]
    assert [record["seq"] for record in records[1:]] == list(range(1, len(ROWS) + 1))
    assert records[3]["message"] == "an error line\nwith a second line"
    assert records[4]["extra"] == {"free": 3} and records[4]["logger"] == "app.disk"


@pytest.mark.django_db
def test_only_finished_logs_older_than_after_days_are_archived(archive_on):
    finished_log("old", days=8)
    finished_log("recent", days=6)
    running = finished_log("running", days=10)
    TaskLog.objects.filter(pk=running.pk).update(finished=None)
    assert archive.archive_due().logs == 1
    assert list(TaskLog.objects.filter(archived__isnull=False).values_list("task_id", flat=True))
    assert TaskLog.objects.get(task_id="old").archived is not None
    assert TaskLogLine.objects.filter(task_id="recent").count() == len(ROWS)
    assert TaskLogLine.objects.filter(task_id="running").count() == len(ROWS)


@pytest.mark.django_db
def test_retention_deletes_the_archive_with_the_row(archive_on):
    log = finished_log(days=31)
    TaskLog.objects.filter(pk=log.pk).update(last_seen=timezone.now() - timedelta(days=31))
    archive.archive_due()
    assert stored_objects(archive_on) == [archive.object_name(log.task_id)]
    out = StringIO()
    call_command("tasklog_prune", stdout=out)
    assert not TaskLog.objects.exists()
    assert stored_objects(archive_on) == []


@pytest.mark.django_db
def test_tasklog_prune_archives_and_says_so(archive_on):
    finished_log()
    out = StringIO()
    call_command("tasklog_prune", "--dry-run", stdout=out)
    assert f"Would archive 1 task log and {len(ROWS)} lines." in out.getvalue()
    assert TaskLogLine.objects.count() == len(ROWS)
    call_command("tasklog_prune", stdout=out)
    assert f"Archived 1 task log and {len(ROWS)} lines." in out.getvalue()
    assert TaskLogLine.objects.count() == 0


def failing_write_keeps_everything(storage_config) -> None:
    """Archive with a storage that fails: the error is reported, nothing is deleted."""
    finished_log()
    with archiving(storage_config):
        run = archive.archive_due()
        assert run.logs == 0 and run.error
        with pytest.raises(CommandError, match="Archive failed"):
            call_command("tasklog_prune", stdout=StringIO())
    log = TaskLog.objects.get()
    assert (log.archive_name, log.archived) == ("", None)
    assert TaskLogLine.objects.count() == len(ROWS)


@pytest.fixture
def own_moto():
    """A moto server of this test's own, which it may stop and start again."""
    executable = Path(sys.executable).parent / "moto_server"
    port = harness_free_port()
    endpoint = f"http://127.0.0.1:{port}"

    def start():
        process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        harness_wait_for(port)
        return process

    server = {"process": start()}

    def stop():
        server["process"].terminate()
        server["process"].wait(10)

    def restart():
        server["process"] = start()

    yield endpoint, stop, restart
    if server["process"].poll() is None:
        stop()


def harness_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def harness_wait_for(port: int) -> None:
    import socket
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto did not start on port {port}")


@pytest.mark.django_db
def test_s3_server_down_deletes_nothing_and_the_next_run_retries(own_moto):
    endpoint, stop, restart = own_moto
    bucket = make_bucket(endpoint)
    stop()
    failing_write_keeps_everything(s3_options(endpoint, bucket))
    restart()  # moto keeps nothing in memory across a restart: the bucket is made again
    make_bucket(endpoint, bucket)
    with archiving(s3_options(endpoint, bucket)):
        assert archive.archive_due().logs == 1
        assert TaskLogLine.objects.count() == 0
        assert len(TaskLogLine.objects.for_task("archived-1").head(100)) == len(ROWS)


@pytest.mark.django_db
def test_s3_bucket_missing_deletes_nothing():
    failing_write_keeps_everything(s3_options(s3_endpoint(), "tasklog-no-such-bucket"))


@pytest.mark.django_db
def test_filesystem_that_cannot_be_written_deletes_nothing(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive's directory should be")
    failing_write_keeps_everything(
        {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker)},
        }
    )


class Injected(Exception):
    pass


@pytest.mark.django_db
def test_killed_between_write_and_delete_loses_nothing_and_stores_once(archive_on, monkeypatch):
    log = finished_log()
    saves = []
    original_save = type(archive_on).save

    def counted_save(self, name, content, *args, **kwargs):
        saves.append(name)
        return original_save(self, name, content, *args, **kwargs)

    monkeypatch.setattr(type(archive_on), "save", counted_save)
    original_delete = TaskLogLineQuerySet.delete_in_seq_ranges

    def killed(self, batch_size=10_000):
        raise Injected

    monkeypatch.setattr(TaskLogLineQuerySet, "delete_in_seq_ranges", killed)
    with pytest.raises(Injected):
        archive.archive_due()
    log.refresh_from_db()
    assert log.archive_name and log.archived is None
    assert TaskLogLine.objects.filter(task_id=log.task_id).count() == len(ROWS)
    assert [line.message for line in TaskLogLine.objects.for_task(log.task_id).head(2)] == [
        row[1] for row in ROWS[:2]
    ]

    monkeypatch.setattr(TaskLogLineQuerySet, "delete_in_seq_ranges", original_delete)
    assert archive.archive_due().logs == 1
    log.refresh_from_db()
    assert log.archived is not None
    assert saves == [log.archive_name]  # written once, by the first run
    assert stored_objects(archive_on) == [log.archive_name]
    assert len(TaskLogLine.objects.for_task(log.task_id).head(100)) == len(ROWS)


@pytest.mark.django_db
def test_killed_between_deleted_rows_loses_nothing(archive_on, monkeypatch):
    log = finished_log()
    original_delete = TaskLogLineQuerySet.delete

    def second_batch_killed(self):
        if not TaskLogLine.objects.filter(seq=1).exists():
            raise Injected  # the first batch (seqs 1-2) is gone
        return original_delete(self)

    monkeypatch.setattr(TaskLogLineQuerySet, "delete", second_batch_killed)
    with pytest.raises(Injected):
        archive.archive_due(batch_size=2)
    assert TaskLogLine.objects.filter(task_id=log.task_id).count() == len(ROWS) - 2
    assert len(TaskLogLine.objects.for_task(log.task_id).head(100)) == len(ROWS)
    monkeypatch.setattr(TaskLogLineQuerySet, "delete", original_delete)
    archive.archive_due(batch_size=2)
    assert TaskLogLine.objects.count() == 0
    assert [line.seq for line in TaskLogLine.objects.for_task(log.task_id).head(100)] == list(
        range(1, len(ROWS) + 1)
    )
    assert stored_objects(archive_on) == [archive.object_name(log.task_id)]


@pytest.mark.django_db
def test_killed_while_writing_rows_records_and_deletes_nothing(archive_on, monkeypatch):
    log = finished_log()
    written = []
    original_record = archive.line_record

    def killed_at_the_fifth(row):
        written.append(row[0])
        if len(written) == 5:
            raise Injected
        return original_record(row)

    monkeypatch.setattr(archive, "line_record", killed_at_the_fifth)
    with pytest.raises(Injected):
        archive.archive_due()
    log.refresh_from_db()
    assert (log.archive_name, log.archived) == ("", None)
    assert TaskLogLine.objects.count() == len(ROWS)
    assert stored_objects(archive_on) == []
    monkeypatch.setattr(archive, "line_record", original_record)
    assert archive.archive_due().logs == 1


@pytest.mark.django_db
def test_a_huge_log_is_archived_and_read_in_bounded_memory(archive_on):
    count = 100_000
    finished_log("huge", rows=[])
    many_lines("huge", count)
    TaskLog.objects.filter(task_id="huge").update(lines=count)
    tracemalloc.start()
    try:
        run = archive.archive_due()
        _current, peak_archive = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        lines = TaskLogLine.objects.for_task("huge")
        last = lines.tail(2)
        total = sum(len(page) for page in lines.pages(page_size=1000))
        _current, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (run.logs, run.lines) == (1, count)
    assert [line.message for line in last] == [f"line {count - 1}", f"line {count}"]
    assert total == count
    # 100,000 lines as model instances would be ~100 MB. A page's worth is a few MB; the S3
    # client's transfer buffers add a fixed ~15 MB (measured), whatever the object's size.
    assert peak_archive < 32 * 2**20, peak_archive
    assert peak_read < 32 * 2**20, peak_read


HOSTILE_IDS = [
    "a/b/c",
    "../../../../etc/passwd",
    "..",
    "ünïcødé-🙂-id",
    "x" * 255,
    "with space and %2F and \\ back",
    "-rf --all",
]


@pytest.mark.abuse
@pytest.mark.django_db
@pytest.mark.parametrize("task_id", HOSTILE_IDS)
def test_hostile_task_ids_get_safe_object_names(archive_on, task_id, tmp_path):
    finished_log(task_id)
    assert archive.archive_due().logs == 1
    name = TaskLog.objects.get(task_id=task_id).archive_name
    assert re.fullmatch(r"tasklog/[0-9a-f]{2}/[0-9a-f]{64}\.ndjson\.gz", name)
    assert stored_objects(archive_on) == [name]
    assert [line.message for line in TaskLogLine.objects.for_task(task_id).tail(1)] == ["last line"]


def spoil(storage, name: str, how: str) -> None:
    with storage.open(name, "rb") as stored:
        data = stored.read()
    spoiled = {
        "truncated": data[: len(data) // 2],
        "corrupted": data[:20] + bytes(b ^ 0xFF for b in data[20:60]) + data[60:],
        "not gzip": b"plain text, not an archive",
        "not an archive": gzip.compress(b'{"something": "else"}\n'),
        "missing": None,
    }[how]
    storage.delete(name)
    if spoiled is not None:
        storage.save(name, ContentFile(spoiled))


@pytest.mark.abuse
@pytest.mark.django_db
@pytest.mark.parametrize("how", ["truncated", "corrupted", "not gzip", "not an archive", "missing"])
def test_a_spoiled_archive_is_a_clear_error_not_a_500(archive_on, reader, how):
    log = finished_log(rows=[(Stream.STDOUT, f"line {n} " + "x" * 200) for n in range(2000)])
    archive.archive_due()
    log.refresh_from_db()
    spoil(archive_on, log.archive_name, how)

    response = reader.get(reverse("tasklog:task_log_lines", args=[log.task_id]), {"q": "zzz"})
    assert response.status_code == 502
    assert "archive" in response.json()["error"] and response.json()["archived"] is True
    page = reader.get(reverse("tasklog:task_log", args=[log.task_id]))
    assert page.status_code == 502 and b"cannot be read" in page.content
    download = reader.get(reverse("tasklog:task_log_download", args=[log.task_id]))
    assert b"archive of this log cannot be read" in b"".join(download.streaming_content)
    with pytest.raises(CommandError, match=r"cannot be read|not a celery-tasklog archive"):
        call_command("tasklog_show", log.task_id, stdout=StringIO())
    with pytest.raises(CommandError, match=r"cannot be read|not a celery-tasklog archive"):
        call_command("tasklog_follow", log.task_id, stdout=StringIO(), stderr=StringIO())


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_archive_each_log_once(archive_on, monkeypatch):
    for number in range(12):
        finished_log(f"concurrent-{number}")
    saves = []
    original_save = type(archive_on).save
    lock = threading.Lock()

    def counted_save(self, name, content, *args, **kwargs):
        with lock:
            saves.append(name)
        return original_save(self, name, content, *args, **kwargs)

    monkeypatch.setattr(type(archive_on), "save", counted_save)
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def run():
        from django.db import connection

        try:
            barrier.wait()
            runs.append(archive.archive_due())
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(saves) == sorted(set(saves)) and len(saves) == 12
    assert sum(run.logs for run in runs) == 12
    assert TaskLogLine.objects.count() == 0
    assert TaskLog.objects.filter(archived__isnull=True).count() == 0
    assert len(stored_objects(archive_on)) == 12


# The setting and its checks (E040-E044).


def archive_errors(value, retention=30, storages_setting=None) -> list[str]:
    overrides = {"CELERY_TASKLOG_ARCHIVE": value, "CELERY_TASKLOG_RETENTION_DAYS": retention}
    if storages_setting is not None:
        overrides["STORAGES"] = storages_setting
    with override_settings(**overrides):
        return [error.id for error in [*check_settings(), *check_archive()]]


FILES = {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_archive_is_off_by_default_and_checks_pass():
    assert archive_errors(None) == []
    assert archive.archive_due().logs == 0


def test_a_good_archive_setting_passes():
    storages_setting = {**django_settings.STORAGES, ALIAS: FILES}
    assert archive_errors({"storage": ALIAS, "after_days": 7}, 30, storages_setting) == []
    assert archive_errors({"storage": ALIAS, "after_days": 7}, 0, storages_setting) == []


@pytest.mark.abuse
@pytest.mark.parametrize(
    "value",
    [
        "not json {",
        [ALIAS, 7],
        {"storage": ALIAS},
        {"storage": ALIAS, "after_days": 7, "prefix": "x"},
        {"after_days": 7},
        42,
    ],
)
def test_e040_a_malformed_archive_setting(value):
    assert archive_errors(value) == ["tasklog.E040"]


@pytest.mark.abuse
@pytest.mark.parametrize("storage", ["nope", "", "ünï🙂", "x" * 10_000, None, 3, ["default"]])
def test_e041_an_unknown_storage_alias(storage):
    assert archive_errors({"storage": storage, "after_days": 7}) == ["tasklog.E041"]


@pytest.mark.abuse
@pytest.mark.parametrize("days", [0, -1, 1.5, "seven", 10**400, float("nan"), True, None, 40_000])
def test_e042_a_bad_archive_age(days):
    storages_setting = {**django_settings.STORAGES, ALIAS: FILES}
    assert archive_errors({"storage": ALIAS, "after_days": days}, 30, storages_setting) == [
        "tasklog.E042"
    ]


@pytest.mark.parametrize("days", [30, 31])
def test_e043_archive_age_not_below_the_retention(days):
    storages_setting = {**django_settings.STORAGES, ALIAS: FILES}
    assert archive_errors({"storage": ALIAS, "after_days": days}, 30, storages_setting) == [
        "tasklog.E043"
    ]


def test_e044_a_storage_whose_backend_cannot_be_loaded():
    storages_setting = {**django_settings.STORAGES, ALIAS: {"BACKEND": "no.such.Storage"}}
    assert archive_errors({"storage": ALIAS, "after_days": 7}, 30, storages_setting) == [
        "tasklog.E044"
    ]


def test_the_setting_comes_from_the_environment_as_json(monkeypatch):
    storages_setting = {**django_settings.STORAGES, ALIAS: FILES}
    monkeypatch.setenv("CELERY_TASKLOG_ARCHIVE", json.dumps({"storage": ALIAS, "after_days": 3}))
    with override_settings(STORAGES=storages_setting):
        archive_setting = conf.settings.ARCHIVE
        assert (archive_setting.storage, archive_setting.after_days) == (ALIAS, 3)


@pytest.mark.django_db
def test_tasklog_archive_moves_at_most_limit_logs(archive_on):
    finished_log("first")
    finished_log("second")
    out = StringIO()
    call_command("tasklog_archive", "--dry-run", stdout=out)
    assert out.getvalue() == f"Would archive 2 task logs and {2 * len(ROWS)} lines.\n"
    call_command("tasklog_archive", "--limit", "1", stdout=out)
    assert f"Archived 1 task log and {len(ROWS)} lines." in out.getvalue()
    assert TaskLog.objects.filter(archived__isnull=True).count() == 1
    call_command("tasklog_archive", stdout=StringIO())
    assert TaskLogLine.objects.count() == 0


@pytest.mark.django_db
def test_tasklog_archive_without_the_setting_says_so():
    with pytest.raises(CommandError, match="CELERY_TASKLOG_ARCHIVE is not set"):
        call_command("tasklog_archive", stdout=StringIO())


@pytest.mark.abuse
@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "-1", "nan", "inf", "1" * 400, "½", "1e400", "0x10", ""])
def test_tasklog_archive_refuses_a_bad_limit(archive_on, limit):
    finished_log()
    with pytest.raises(CommandError, match="limit"):
        call_command("tasklog_archive", "--limit", limit, stdout=StringIO())
    assert TaskLogLine.objects.count() == len(ROWS)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)


@pytest.mark.abuse
@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries({"storage": JSON_VALUES, "after_days": JSON_VALUES})
    | JSON_VALUES
    | st.text(max_size=200)
)
def test_any_archive_value_parses_or_is_refused_with_an_e040_e042_error(value):
    try:
        parsed = conf.archive_or_off(value)
    except conf.SettingError as error:
        assert error.check_id in {"tasklog.E040", "tasklog.E041", "tasklog.E042"}
        assert len(str(error)) < 300
        return
    assert parsed is None or (parsed.storage in django_settings.STORAGES and parsed.after_days >= 1)


def random_queries(count: int, last_seq: int) -> list[dict]:
    """Lines-endpoint queries over every key, hostile values included (seeded: reproducible)."""
    import random

    chooser = random.Random(15)
    seqs = [0, 1, last_seq - 1, last_seq, last_seq + 1, 10**9, *range(0, last_seq, 7)]
    queries = []
    for _ in range(count):
        query = {}
        if chooser.random() < 0.5:
            query["after"] = str(chooser.choice(seqs))
        if chooser.random() < 0.3:
            query["before"] = str(chooser.choice(seqs))
        elif chooser.random() < 0.2:
            query["around"] = str(chooser.choice(seqs))
            query["context"] = str(chooser.choice([0, 1, 5, 50]))
        query["limit"] = str(chooser.choice([1, 2, 7, 1000]))
        if chooser.random() < 0.5:
            query["q"] = chooser.choice(["line", "LINE 1", "ünï", "%", "_", "::group::", "1$"])
            query["regex"] = chooser.choice(["0", "1"])
        if chooser.random() < 0.3:
            query["stream"] = chooser.choice(["stdout", "stderr", "log", "marker"])
        if chooser.random() < 0.2:
            query["level"] = chooser.choice(["warning", "error"])
        queries.append(query)
    return queries


@pytest.mark.abuse
@pytest.mark.django_db
def test_the_lines_endpoint_answers_the_same_from_the_archive_for_any_query(archive_on, reader):
    rows = [*ROWS * 6, *[(Stream.STDOUT, f"line {n} ünï") for n in range(40)]]
    log = finished_log(rows=rows)
    url = reverse("tasklog:task_log_lines", args=[log.task_id])
    queries = random_queries(80, len(rows))

    def answers() -> list:
        bodies = []
        for query in queries:
            response = reader.get(url, query)
            body = response.json()
            body.pop("task", None)
            bodies.append((response.status_code, body))
        return bodies

    before = answers()
    assert archive.archive_due().logs == 1
    assert answers() == before


@pytest.mark.django_db
def test_the_admin_says_when_an_archive_cannot_be_deleted_and_keeps_the_log(admin_client, own_moto):
    endpoint, stop, _restart = own_moto
    with archiving(s3_options(endpoint, make_bucket(endpoint))):
        log = finished_log()
        archive.archive_due()
        stop()  # the storage is down
        selection = {"action": "delete_logs", "_selected_action": [log.pk], "post": "yes"}
        changelist = reverse("admin:tasklog_tasklog_changelist")
        done = admin_client.post(changelist, selection, follow=True)
    assert done.status_code == 200
    assert '<li class="error">Cannot delete the archive tasklog/' in done.content.decode()
    assert TaskLog.objects.filter(pk=log.pk).exists()
