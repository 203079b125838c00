"""Partitions at scale (PostgreSQL): the same lines in a plain and in a day-partitioned table.

    python -m benchmarks.scale_partitions [--quick]

1. Ingest: capture in process into each table, the median of several runs, and their ratio.
2. Conversion: ``tasklog_partition --convert`` of a populated table: the time it holds the lock.
3. Scale: a table of 10,000,000 lines (tasks of 1,000 lines, 40 days of them, filled with
   ``INSERT ... SELECT generate_series`` and analyzed), plain then partitioned: the task page,
   a JSON page, a search, the admin line list (Django's test client, a staff user), then the
   prune of the 10 days past a 30-day retention: by row-by-row DELETE in the plain table, by
   dropping partitions in the other; its time, the WAL it wrote (``pg_current_wal_lsn`` before
   and after) and the table's size after.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta

from benchmarks import common
from benchmarks.throughput import capture_in_process

SIZES = {
    "full": {"ingest": 200_000, "repeat": 5, "convert": 1_000_000, "table": 10_000_000},
    "quick": {"ingest": 5_000, "repeat": 1, "convert": 10_000, "table": 100_000},
}
LINES_PER_TASK = 1_000
DAYS, RETENTION = 40, 30
QUERY_REPEAT = 5

FILL_LOGS = """
INSERT INTO tasklog_tasklog (task_id, task_name, worker, started, finished, last_seen, attempts,
    lines, dropped, truncated, interrupted, launched_by, launched_by_user_id, launched_from)
SELECT 'bench-' || n, 'benchmarks.scale', 'bench@host', at, at + interval '1 minute',
    at + interval '1 minute', 1, %(lines)s, 0, false, false, '', '', ''
FROM generate_series(0, %(tasks)s - 1) n,
    LATERAL (SELECT now() - (n %% %(days)s) * interval '1 day' - interval '1 hour' AS at) t
"""
FILL_LINES = """
INSERT INTO tasklog_tasklogline (task_id, seq, timestamp, stream, level, message, task_day)
SELECT t.task_id, s, t.started + s * interval '1 ms', 'stdout', NULL,
    'line ' || s || ' of task ' || t.task_id || ', long enough to look like real output',
    CASE WHEN %(keyed)s THEN (t.started AT TIME ZONE 'UTC')::date END
FROM tasklog_tasklog t, generate_series(1, t.lines) s
"""


def sql(statement: str, params: dict | None = None, *, autocommit: bool = False):
    with common.raw_connection() as connection:
        connection.autocommit = autocommit
        cursor = connection.execute(statement, params)
        row = cursor.fetchone() if cursor.description else None
        connection.commit()
        return row


def empty_tables() -> None:
    sql("TRUNCATE tasklog_tasklog, tasklog_tasklogline")


def ingest(size: dict) -> dict:
    """Lines/s of each table, and the median ratio of runs taken in pairs, each on an empty
    table, plain then partitioned: the machine's drift touches both sides of a pair alike."""
    from django.test.utils import override_settings

    lines = size["ingest"]
    rates = {"plain": [], "partitioned": []}
    for _ in range(size["repeat"]):
        empty_tables()
        rates["plain"].append(lines / capture_in_process(lines))
        empty_tables()
        convert()
        with override_settings(CELERY_TASKLOG_PARTITIONS="day"):
            rates["partitioned"].append(lines / capture_in_process(lines))
        empty_tables()
        revert()
    ratios = [part / plain for plain, part in zip(*rates.values(), strict=True)]
    return {
        **{label: statistics.median(values) for label, values in rates.items()},
        "ratio": statistics.median(ratios),
    }


def convert() -> float:
    from django.test.utils import override_settings

    from tasklog import partitions

    with override_settings(CELERY_TASKLOG_PARTITIONS="day"):
        return common.timed(lambda: partitions.convert("default", "day"))


def revert() -> float:
    from tasklog import partitions

    return common.timed(lambda: partitions.revert("default"))


def fill(table_lines: int, *, keyed: bool) -> float:
    tasks = table_lines // LINES_PER_TASK
    start = time.perf_counter()
    sql(FILL_LOGS, {"tasks": tasks, "lines": LINES_PER_TASK, "days": DAYS})
    sql(FILL_LINES, {"keyed": keyed})
    sql("VACUUM ANALYZE tasklog_tasklog, tasklog_tasklogline", autocommit=True)
    return time.perf_counter() - start


def query_times() -> dict:
    """Median seconds of each reader's request, through Django's test client."""
    from django.test import Client

    from tests.logs import make_user

    client = Client()
    user = make_user(f"bench-{time.monotonic_ns()}")
    client.force_login(user)
    task = "bench-7"
    paths = {
        "task page": f"/tasklog/{task}/",
        "JSON page (middle)": f"/tasklog/{task}/lines/?after={LINES_PER_TASK // 2}",
        "JSON search": f"/tasklog/{task}/lines/?q=line+999+of",
        "admin: lines of a task": f"/admin/tasklog/tasklogline/?task_id={task}",
        "admin: task logs": "/admin/tasklog/tasklog/",
    }
    user.is_superuser = True
    user.save()
    times = {}
    for name, path in paths.items():
        client.get(path)  # warm
        samples = []
        for _ in range(QUERY_REPEAT):
            started = time.perf_counter()
            response = client.get(path)
            samples.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
        times[name] = statistics.median(samples)
    return times


def prune() -> dict:
    """Run the prune task's steps; time, WAL written and the lines table's size after."""
    from django.test.utils import override_settings

    from tasklog.tasks import prune_task_logs

    wal_before = sql("SELECT pg_current_wal_lsn()")[0]
    started = time.perf_counter()
    with override_settings(CELERY_TASKLOG_RETENTION_DAYS=RETENTION):
        result = prune_task_logs.apply().get()
    seconds = time.perf_counter() - started
    wal = sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %(lsn)s)", {"lsn": wal_before})
    size = sql(
        "SELECT COALESCE((SELECT sum(pg_total_relation_size(relid)) FROM "
        "pg_partition_tree('tasklog_tasklogline')), pg_total_relation_size('tasklog_tasklogline'))"
    )
    return {
        "seconds": seconds,
        "lines": result["lines"],
        "wal_mb": float(wal[0]) / 2**20,
        "size_after_mb": float(size[0]) / 2**20,
        "dropped": len(result["partitions_dropped"]),
    }


def scale(size: dict) -> dict:
    from django.test.utils import override_settings

    empty_tables()
    results = {"fill_plain_s": fill(size["table"], keyed=False)}
    results["plain_queries"] = query_times()
    results["plain_prune"] = prune()
    empty_tables()
    convert()
    with override_settings(CELERY_TASKLOG_PARTITIONS="day"):
        make_daily_partitions()
        results["fill_partitioned_s"] = fill(size["table"], keyed=True)
        results["partitioned_queries"] = query_times()
        results["partitioned_prune"] = prune()
    empty_tables()
    revert()
    return results


def make_daily_partitions() -> None:
    """The partitions the prune task would have made ahead on each of the last days."""
    from django.utils import timezone

    from tasklog import partitions

    today = timezone.now().date()
    for days_ago in range(DAYS + 1):
        partitions.create_partition("default", today - timedelta(days=days_ago), "day")


def conversion(size: dict) -> float:
    empty_tables()
    fill(size["convert"], keyed=False)
    seconds = convert()
    empty_tables()
    revert()
    return seconds


def measure(size_name: str) -> tuple[list[list], dict]:
    size = SIZES[size_name]
    rates = ingest(size)
    convert_seconds = conversion(size)
    scaled = scale(size)
    ratio = rates.pop("ratio")
    rows = [
        [
            "ingest, lines/s (capture in process, median of pairs)",
            rates["plain"],
            rates["partitioned"],
            ratio,
        ],
        [f"convert {size['convert']:,} lines: lock held, s", "", convert_seconds, ""],
    ]
    for name, plain in scaled["plain_queries"].items():
        partitioned = scaled["partitioned_queries"][name]
        rows.append([f"{name}, ms", plain * 1000, partitioned * 1000, partitioned / plain])
    for key, label in (
        ("seconds", "prune, s"),
        ("lines", "prune, lines deleted"),
        ("wal_mb", "prune, WAL written, MB"),
        ("size_after_mb", "lines table after prune, MB"),
    ):
        plain, partitioned = scaled["plain_prune"][key], scaled["partitioned_prune"][key]
        rows.append([label, plain, partitioned, partitioned / plain if plain else ""])
    figures = {
        "size": size_name,
        "table_lines": size["table"],
        "ingest_lines_per_s": {label: round(rate) for label, rate in rates.items()},
        "ingest_ratio": round(ratio, 3),
        "convert_lines": size["convert"],
        "convert_lock_s": round(convert_seconds, 2),
        **{
            key: (
                {name: round(value * 1000, 2) for name, value in value.items()}
                if key.endswith("queries")
                else value
            )
            for key, value in scaled.items()
        },
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("scale_partitions", __doc__, measure, ["", "plain", "partitioned", "ratio"], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
