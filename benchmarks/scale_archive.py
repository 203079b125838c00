"""Archive: the bytes a million lines take in PostgreSQL (table, TOAST and indexes) and in the
archive (one gzip NDJSON object), and how many lines a second ``archive_due`` moves (write,
read back and verify, delete the rows), to the filesystem storage and, when
``S3_ENDPOINT_URL`` is set (``make bench`` starts moto), to an S3-compatible server through
django-storages.

    python -m benchmarks.scale_archive [--quick]

One log of ``lines`` lines per storage, filled with ``INSERT ... SELECT generate_series`` and
vacuumed, so the table's size is what it would be on a quiet server. Last, the time to read the
last 1,000 lines back from the archive (what the task page shows first): the whole object is
streamed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

from benchmarks import common

SIZES = {"full": 1_000_000, "quick": 10_000}
ALIAS = "tasklog_archive"
FILL_LOG = """
INSERT INTO tasklog_tasklog (task_id, task_name, worker, started, finished, last_seen, attempts,
    lines, dropped, truncated, interrupted, launched_by, launched_by_user_id, launched_from)
VALUES (%(id)s, 'benchmarks.archive', 'bench@host', now() - interval '10 days',
    now() - interval '10 days', now() - interval '10 days', 1, %(lines)s, 0, false, false, '', '',
    '')
"""
FILL_LINES = """
INSERT INTO tasklog_tasklogline (task_id, seq, timestamp, stream, level, message, logger)
SELECT %(id)s, s, now() - interval '10 days' + s * interval '1 ms',
    CASE WHEN s %% 50 = 0 THEN 'stderr' ELSE 'stdout' END, NULL,
    'line ' || s || ' of a big log, long enough to look like real output: '
        || md5(s::text), ''
FROM generate_series(1, %(lines)s) s
"""
TABLE_BYTES = """
SELECT pg_total_relation_size('tasklog_tasklogline'), (SELECT count(*) FROM tasklog_tasklogline)
"""


def storages_to_measure(directory: str) -> dict[str, dict]:
    found = {
        "filesystem": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": directory},
        }
    }
    endpoint = os.environ.get("S3_ENDPOINT_URL")
    if endpoint:
        import boto3

        bucket = f"tasklog-bench-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        found["s3 (moto)"] = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "access_key": "bench",
                "secret_key": "bench",
                "region_name": "us-east-1",
                "addressing_style": "path",
                "max_memory_size": 8 * 2**20,
            },
        }
    return found


def filled(task_id: str, lines: int) -> int:
    """Write one finished log of ``lines`` lines; returns the lines table's size in bytes."""
    with common.raw_connection() as connection:
        connection.execute("TRUNCATE tasklog_tasklogline")
        connection.execute(FILL_LOG, {"id": task_id, "lines": lines})
        connection.execute(FILL_LINES, {"id": task_id, "lines": lines})
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE tasklog_tasklogline")
        size, stored = connection.execute(TABLE_BYTES).fetchone()
    assert stored == lines, (stored, lines)
    return size


def measure(size: str):
    from django.conf import settings
    from django.core.files.storage import storages
    from django.test.utils import override_settings

    from tasklog import archive
    from tasklog.models import TaskLogLine

    lines = SIZES[size]
    rows, figures = [], {"size": size, "lines": lines}
    with tempfile.TemporaryDirectory(prefix="tasklog-archive-") as directory:
        for name, storage in storages_to_measure(directory).items():
            task_id = f"bench-archive-{uuid.uuid4().hex[:8]}"
            table_bytes = filled(task_id, lines)
            with override_settings(
                STORAGES={**settings.STORAGES, ALIAS: storage},
                CELERY_TASKLOG_ARCHIVE={"storage": ALIAS, "after_days": 1},
                CELERY_TASKLOG_RETENTION_DAYS=0,
            ):
                start = time.perf_counter()
                run = archive.archive_due()
                seconds = time.perf_counter() - start
                assert (run.logs, run.lines, run.error) == (1, lines, ""), run
                object_bytes = storages[ALIAS].size(archive.object_name(task_id))
                start = time.perf_counter()
                tail = TaskLogLine.objects.for_task(task_id).tail(1000)
                tail_seconds = time.perf_counter() - start
                assert tail[-1].seq == lines, tail[-1]
            per_million = 1_000_000 / lines
            key = name.split()[0]
            figures |= {
                "db_bytes_per_million_lines": round(table_bytes * per_million),
                f"{key}_archive_bytes_per_million_lines": round(object_bytes * per_million),
                f"{key}_archive_lines_per_second": round(lines / seconds),
                f"{key}_db_to_archive_ratio": round(table_bytes / object_bytes, 1),
                f"{key}_archived_tail_seconds": round(tail_seconds, 2),
            }
            rows.append(
                [
                    name,
                    round(table_bytes * per_million),
                    round(object_bytes * per_million),
                    round(table_bytes / object_bytes, 1),
                    round(lines / seconds),
                    round(tail_seconds, 2),
                ]
            )
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    headers = ["storage", "DB bytes / 1M lines", "archive bytes / 1M", "ratio", "lines/s"]
    headers += ["last 1,000 lines read back, s"]
    common.run("scale_archive", __doc__, measure, headers, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
