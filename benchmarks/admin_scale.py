"""Admin changelists at scale, and what an opt-in trigram index costs ingest (docs/admin.md).

Usage, against a PostgreSQL database that may be filled and emptied:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tasklog_bench \
        python benchmarks/admin_scale.py [--tasks 50000] [--lines-per-task 100] [--repeat 5]

Fills the tables with generate_series (once: skipped when the tasks are already there), then
times each changelist URL through Django's test client (median of ``--repeat`` runs after one
warm-up, with the number of queries), then measures COPY ingest in batches of 1,000 lines
without and with the trigram index of docs/admin.md, and message searches with the index.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from tasklog.models import TaskLog  # noqa: E402

RARE = "ConnectionRefusedError"
TRIGRAM_INDEX = (
    "CREATE INDEX IF NOT EXISTS tasklog_line_message_trgm "
    "ON tasklog_tasklogline USING gin (UPPER(message) gin_trgm_ops)"
)

FILL = """
INSERT INTO tasklog_tasklog (task_id, task_name, worker, started, finished, last_seen, attempts,
    lines, dropped, truncated, interrupted, launched_by, launched_by_user_id, launched_from)
SELECT md5(t::text)::uuid::text, 'app.tasks.job_' || (t %% 12), 'celery@worker' || (t %% 4),
    now() - t * interval '51.84 s', now() - t * interval '51.84 s' + (t %% 90) * interval '1 s',
    now() - t * interval '51.84 s', 1, %(per_task)s, 0, t %% 50 = 0, false,
    CASE WHEN t %% 3 = 0 THEN 'alice' ELSE '' END, CASE WHEN t %% 3 = 0 THEN '1' ELSE '' END,
    CASE WHEN t %% 3 = 0 THEN 'POST /reports/' ELSE 'celery beat' END
FROM generate_series(1, %(tasks)s) t;

INSERT INTO django_celery_results_taskresult (task_id, status, task_name, date_created,
    date_done, result, traceback, meta, content_type, content_encoding, periodic_task_name,
    worker, task_args, task_kwargs)
SELECT md5(t::text)::uuid::text,
    CASE WHEN t %% 25 = 0 THEN 'FAILURE' WHEN t %% 97 = 0 THEN 'STARTED' ELSE 'SUCCESS' END,
    'app.tasks.job_' || (t %% 12), now() - t * interval '51.84 s',
    now() - t * interval '51.84 s' + (t %% 90) * interval '1 s', '"ok"', NULL, '{}',
    'application/json', 'utf-8', NULL, 'celery@worker' || (t %% 4), '[]', '{}'
FROM generate_series(1, %(tasks)s) t;

INSERT INTO tasklog_tasklogline (task_id, seq, timestamp, stream, level, message)
SELECT md5(t::text)::uuid::text, s,
    now() - t * interval '51.84 s' + s * interval '10 ms',
    CASE WHEN s %% 10 = 0 THEN 'stderr' WHEN s %% 10 = 5 THEN 'log' ELSE 'stdout' END,
    CASE WHEN s %% 10 = 5 THEN 20 END,
    CASE WHEN t %% 500 = 0 AND s = %(per_task)s
        THEN 'OSError: [Errno 111] ' || %(rare)s || ': could not reach db-' || t
        ELSE 'processing item ' || s || ' of batch ' || t || ': ok in ' || (s * 7 %% 97) || ' ms'
    END
FROM generate_series(1, %(tasks)s) t, generate_series(1, %(per_task)s) s;
ANALYZE tasklog_tasklog; ANALYZE tasklog_tasklogline; ANALYZE django_celery_results_taskresult;
"""


def fill(tasks: int, per_task: int) -> None:
    if TaskLog.objects.exists():
        print(f"tables already filled: {TaskLog.objects.count()} tasks")
        return
    started = time.perf_counter()
    params = {"tasks": tasks, "per_task": per_task, "rare": RARE}
    with connection.cursor() as cursor:
        for statement in filter(str.strip, FILL.split(";")):
            cursor.execute(statement, params if "%(" in statement else None)
    print(
        f"filled {tasks} tasks, {tasks * per_task} lines in {time.perf_counter() - started:.0f} s"
    )


def time_changelists(repeat: int) -> None:
    user, _created = User.objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    some_task = TaskLog.objects.order_by("started").values_list("task_id", flat=True)[100]
    logs = reverse("admin:tasklog_tasklog_changelist")
    lines = reverse("admin:tasklog_tasklogline_changelist")
    urls = [
        (logs, "unfiltered, first page"),
        (logs + "?p=200", "unfiltered, page 200"),
        (logs + "?state=FAILURE", "state = FAILURE (TaskResult ids first)"),
        (logs + "?state=SUCCESS", "state = SUCCESS (10,000 newest ids)"),
        (logs + "?task_name=app.tasks.job_3", "task name"),
        (logs + "?truncated__exact=1", "truncated"),
        (logs + f"?q={some_task}", "search task id"),
        (logs + "?q=job_1", "search task name"),
        (lines, "unfiltered, first page"),
        (lines + "?p=500", "unfiltered, page 500"),
        (lines + "?stream__exact=stderr", "stream = stderr"),
        (lines + "?level__exact=40", "level = ERROR (matches nothing)"),
        (lines + f"?task_id={some_task}", "one task"),
        (lines + f"?q={some_task}", "search task id"),
        (lines + f"?q={RARE}", "search text, last 24 h (default)"),
        (lines + f"?q={RARE}&search_in=7d", "search text, last 7 days"),
        (lines + f"?q={RARE}&search_in=all", "search text, all lines"),
        (lines + f"?q=item+42+of&task_id={some_task}", "search text in one task"),
    ]
    print("| list | request | median ms | max ms | queries |")
    print("|---|---|---:|---:|---:|")
    for url, label in urls:
        client.get(url)
        durations = []
        for _run in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                durations.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        model = "TaskLog" if url.startswith(logs) else "TaskLogLine"
        print(
            f"| {model} | {label} | {statistics.median(durations):.0f} "
            f"| {max(durations):.0f} | {len(queries)} |"
        )


def copy_batches(rows: int, batch: int, label: str) -> float:
    """COPY ``rows`` new lines in committed batches, as the capture engine writes; lines/s."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM tasklog_tasklogline")
        base = cursor.fetchone()[0]
    raw = connection.connection
    started = time.perf_counter()
    for first in range(0, rows, batch):
        with (
            raw.transaction(),
            raw.cursor() as cursor,
            cursor.copy(
                "COPY tasklog_tasklogline (task_id, seq, timestamp, stream, level, message)"
                " FROM STDIN"
            ) as copy,
        ):
            for number in range(first, first + batch):
                copy.write_row(
                    (
                        f"ingest-{label}-{base}-{number // batch}",
                        number % batch + 1,
                        "2030-01-01T00:00:00Z",
                        "stdout",
                        None,
                        f"processing item {number} of batch {number // batch}: ok",
                    )
                )
    rate = rows / (time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tasklog_tasklogline WHERE task_id LIKE 'ingest-%%'")
    return rate


def measure_ingest(rows: int, repeat: int) -> None:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS tasklog_line_message_trgm")
    without = [copy_batches(rows, 1000, "plain") for _run in range(repeat)]
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        started = time.perf_counter()
        cursor.execute(TRIGRAM_INDEX)
        built = time.perf_counter() - started
    with_index = [copy_batches(rows, 1000, "trgm") for _run in range(repeat)]
    print(f"trigram index built on the existing lines in {built:.0f} s")
    print(f"COPY {rows} lines in batches of 1,000, median of {repeat}:")
    print(f"  without trigram index: {statistics.median(without):,.0f} lines/s  {without}")
    print(f"  with trigram index:    {statistics.median(with_index):,.0f} lines/s  {with_index}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--lines-per-task", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ingest-rows", type=int, default=200_000)
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    call_command("migrate", verbosity=0)
    fill(options.tasks, options.lines_per_task)
    print("## changelists without the trigram index")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS tasklog_line_message_trgm")
    time_changelists(options.repeat)
    measure_ingest(options.ingest_rows, 3)
    print("## changelists with the trigram index")
    time_changelists(options.repeat)


if __name__ == "__main__":
    main()
