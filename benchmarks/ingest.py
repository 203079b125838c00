"""Capture throughput on SQLite or MySQL/MariaDB (whichever ``DATABASE_URL`` names), side by
side with the naive one-INSERT-per-line writer and the driver's raw ``executemany`` of the same
rows into the same table in one transaction (the ingest limit there), all in one run on one
database; on SQLite, in its default journal mode and then in WAL mode. PostgreSQL's
counterpart, against COPY, is ``throughput``.

    DATABASE_URL=sqlite:// python -m benchmarks.ingest [--quick]
    DATABASE_URL=mysql://root@127.0.0.1:3306/x python -m benchmarks.ingest [--quick]

``python -m benchmarks`` runs it on SQLite, and on MariaDB when ``MARIADB_URL`` is set
(``make bench`` starts one).
"""

from __future__ import annotations

import statistics
import sys
import time

from benchmarks import common
from benchmarks.throughput import capture_in_process, capture_in_worker, naive_writes

LINES = {"full": 200_000, "quick": 5_000}
NAIVE_LINES = {"full": 3_000, "quick": 300}
REPEAT = {"full": 5, "quick": 1}
SCHEMES = ("sqlite://", "mysql://")

CAPTURE = "celery-tasklog, in process"
WORKER = "celery-tasklog, worker process"
NAIVE = "naive: objects.create() per line"
RAW = "raw executemany, one transaction"
CAPTURE_WAL = "SQLite in WAL mode: celery-tasklog, in process"
NAIVE_WAL = "SQLite in WAL mode: naive"


def raw_executemany(count: int) -> float:
    """Seconds for the driver's ``executemany`` of ``count`` prepared rows, commit included.

    The rows are made up front in the form the driver takes fastest (the timestamp as the
    naive UTC text Django stores), a plain INSERT: no conflict clause, no Django cursor.
    """
    from django.db import connection

    from tasklog.models import TaskLogLine

    rows = [
        (task_id, seq, moment.replace(tzinfo=None).isoformat(" "), stream, level, message)
        for task_id, seq, moment, stream, level, message in common.line_rows(count)
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in ("task_id", "seq", "timestamp"))
    columns += ", " + ", ".join(quote(column) for column in ("stream", "level", "message"))
    mark = "?" if connection.vendor == "sqlite" else "%s"
    statement = (
        f"INSERT INTO {quote(TaskLogLine._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join([mark] * 6)})"
    )
    raw = common.raw_connection()
    try:
        start = time.perf_counter()
        cursor = raw.cursor()
        cursor.executemany(statement, rows)
        raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def measure(size: str) -> tuple[list[list], dict]:
    from django.db import connection

    lines, repeat = LINES[size], REPEAT[size]
    per_second = {}
    with common.workers():
        per_second[CAPTURE] = lines / statistics.median(
            capture_in_process(lines) for _ in range(repeat)
        )
        per_second[WORKER] = lines / statistics.median(
            capture_in_worker(lines) for _ in range(repeat)
        )
    per_second[NAIVE] = NAIVE_LINES[size] / naive_writes(NAIVE_LINES[size])
    per_second[RAW] = lines / statistics.median(raw_executemany(lines) for _ in range(repeat))
    if connection.vendor == "sqlite":  # again in WAL mode, the example project's journal
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
        per_second[CAPTURE_WAL] = lines / statistics.median(
            capture_in_process(lines) for _ in range(repeat)
        )
        per_second[NAIVE_WAL] = NAIVE_LINES[size] / naive_writes(NAIVE_LINES[size])
    capture, naive, raw = per_second[CAPTURE], per_second[NAIVE], per_second[RAW]
    rows = [[name, rate, rate / naive, rate / raw] for name, rate in per_second.items()]
    figures = {
        "size": size,
        "database": connection.vendor,
        "server": connection.Database.__name__ + " " + _server_version(connection),
        "lines": lines,
        "lines_per_s": {name: round(rate) for name, rate in per_second.items()},
        "capture_vs_naive": round(capture / naive, 1),
        "capture_vs_executemany": round(capture / raw, 3),
        "worker_vs_naive": round(per_second[WORKER] / naive, 1),
        "worker_vs_executemany": round(per_second[WORKER] / raw, 3),
    }
    if NAIVE_WAL in per_second:
        figures["wal_capture_vs_naive"] = round(per_second[CAPTURE_WAL] / per_second[NAIVE_WAL], 1)
    return rows, figures


def _server_version(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sqlite_version()" if connection.vendor == "sqlite" else "SELECT VERSION()"
        )
        return cursor.fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    common.run(
        "ingest",
        __doc__,
        measure,
        ["", "lines/s", "x naive", "x raw executemany"],
        argv,
        schemes=SCHEMES,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
