"""Capture throughput: a task printing short lines as fast as it can, stored by celery-tasklog,
against the same prints to /dev/null and to a file, the naive one-INSERT-per-line writer, and a
raw COPY of the same rows into the same table (the database's ingest limit), all in one run on
one database. Also the wall time capture adds to a task that prints and sleeps, and what each
index of the lines table costs a COPY.

    python -m benchmarks.throughput [--quick]
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

from benchmarks import common
from benchmarks.workloads import print_lines, printed_lines

LINES = {"full": 200_000, "quick": 5_000}
NAIVE_LINES = {"full": 5_000, "quick": 500}
TIMED_PRINTS = {"full": 2_000, "quick": 200}
TIMED_PRINT_PAUSE = 0.001
REPEAT = {"full": 5, "quick": 1}
WORKER_TIMEOUT = 300.0

COPY_FORMATS = {"text": False, "binary": True}  # the ingest limit is the faster of the two
UNIQUE_TASK_SEQ = "CREATE UNIQUE INDEX ON {table} (task_id, seq)"
INDEX_VARIANTS = {
    "as the model: unique (task_id, seq) + btree (timestamp)": [
        UNIQUE_TASK_SEQ,
        "CREATE INDEX ON {table} (timestamp)",
    ],
    "unique (task_id, seq) + BRIN (timestamp)": [
        UNIQUE_TASK_SEQ,
        "CREATE INDEX ON {table} USING brin (timestamp)",
    ],
    "unique (task_id, seq) only": [UNIQUE_TASK_SEQ],
    "primary key only": [],
}


def new_task_id() -> str:
    return f"bench-{uuid.uuid4()}"


def print_to_file(path: str, count: int) -> float:
    """Seconds to print ``count`` lines with stdout redirected to ``path``."""
    with open(path, "w") as target, contextlib.redirect_stdout(target):
        return common.timed(lambda: print_lines(count))


def capture_in_process(count: int) -> float:
    """Seconds from entering ``capture_output`` to the last line stored (leaving it waits)."""
    from tasklog.capture import capture_output

    task_id = new_task_id()

    def run() -> None:
        with capture_output(task_id, task_name="benchmark"):
            print_lines(count)

    seconds = common.timed(run)
    assert_all_stored(task_id, count)
    return seconds


def capture_in_worker(count: int) -> float:
    """Seconds from the worker's first line to the moment its last line was stored."""
    from benchmarks.tasks import print_fast
    from tasklog.models import TaskLog, TaskLogLine

    task_id = print_fast.delay(count).id
    log = common.wait_until(
        lambda: TaskLog.objects.filter(task_id=task_id, finished__isnull=False).first(),
        WORKER_TIMEOUT,
        f"worker task {task_id} finished",
        poll=0.05,
    )
    assert_all_stored(task_id, count)
    first = TaskLogLine.objects.for_task(task_id).get(seq=1)
    return (log.finished - first.timestamp).total_seconds()


def assert_all_stored(task_id: str, count: int) -> None:
    from tasklog.models import TaskLogLine

    stored = TaskLogLine.objects.for_task(task_id).count()
    if stored != count:
        raise AssertionError(f"task {task_id}: {stored} lines stored, {count} printed")


def naive_writes(count: int) -> float:
    """Seconds for one ``TaskLogLine.objects.create()`` (one INSERT, one commit) per line."""
    from django.utils import timezone

    from tasklog.models import Stream, TaskLogLine

    task_id = new_task_id()

    def write() -> None:
        for seq, message in enumerate(printed_lines(count), start=1):
            TaskLogLine.objects.create(
                task_id=task_id,
                seq=seq,
                timestamp=timezone.now(),
                stream=Stream.STDOUT,
                message=message,
            )

    return common.timed(write)


def raw_copy(count: int, table: str = common.LINES_TABLE, binary: bool = False) -> float:
    """Seconds for one COPY of ``count`` prepared rows into ``table``, commit included."""
    return common.copy_rows(common.line_rows(count), table, binary)


def index_cost(count: int, repeat: int) -> dict[str, float]:
    """Rows/s of a binary COPY into a fresh copy of the lines table under each set of indexes.

    The variants take turns, so a slower moment of the machine does not favour one of them.
    """
    seconds = {variant: [] for variant in INDEX_VARIANTS}
    for _ in range(repeat):
        for variant, statements in INDEX_VARIANTS.items():
            with scratch_lines_table(statements) as table:
                seconds[variant].append(raw_copy(count, table, binary=True))
    return {variant: count / statistics.median(times) for variant, times in seconds.items()}


@contextlib.contextmanager
def scratch_lines_table(index_statements: list[str]) -> Iterator[str]:
    """An empty table shaped like the lines table, with only a primary key and these indexes."""
    table = "bench_lines_scratch"
    with common.raw_connection() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(
            f"CREATE TABLE {table} (LIKE {common.LINES_TABLE}"
            " INCLUDING DEFAULTS INCLUDING IDENTITY)"
        )
        connection.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
        for statement in index_statements:
            connection.execute(statement.format(table=table))
        connection.commit()
    try:
        yield table
    finally:
        with common.raw_connection() as connection:
            connection.execute(f"DROP TABLE {table}")


def timed_prints(count: int) -> None:
    """Work like the example's ``timed_print_task``: a line, a short sleep, again."""
    for number in range(1, count + 1):
        print(f"Line {number} of {count}")
        time.sleep(TIMED_PRINT_PAUSE)


def capture_overhead(count: int, repeat: int) -> tuple[float, float]:
    """Wall seconds of ``timed_prints`` to /dev/null, and captured (until stored)."""
    from tasklog.capture import capture_output

    def plain() -> None:
        with open("/dev/null", "w") as devnull, contextlib.redirect_stdout(devnull):
            timed_prints(count)

    def captured() -> None:
        with capture_output(new_task_id(), task_name="benchmark"):
            timed_prints(count)

    return common.median_time(plain, repeat), common.median_time(captured, repeat)


def measure(size: str) -> tuple[list[list], dict]:
    lines, repeat, naive_lines = LINES[size], REPEAT[size], NAIVE_LINES[size]
    per_second = {}
    with tempfile.NamedTemporaryFile(suffix=".log") as local_file, common.workers():
        per_second["print to /dev/null"] = lines / common.median_time(
            lambda: print_to_file("/dev/null", lines), repeat
        )
        per_second["print to a local file"] = lines / common.median_time(
            lambda: print_to_file(local_file.name, lines), repeat
        )
        per_second["celery-tasklog, in process"] = lines / statistics.median(
            capture_in_process(lines) for _ in range(repeat)
        )
        per_second["celery-tasklog, worker process"] = lines / statistics.median(
            capture_in_worker(lines) for _ in range(repeat)
        )
    per_second["naive: objects.create() per line"] = naive_lines / naive_writes(naive_lines)
    for name, binary in COPY_FORMATS.items():
        per_second[f"raw COPY ({name}) into the lines table"] = lines / statistics.median(
            raw_copy(lines, binary=binary) for _ in range(repeat)
        )
    plain, captured = capture_overhead(TIMED_PRINTS[size], repeat)
    indexes = index_cost(lines, repeat)
    return table_and_figures(per_second, plain, captured, indexes, size)


def table_and_figures(per_second, plain, captured, indexes, size) -> tuple[list[list], dict]:
    capture = per_second["celery-tasklog, in process"]
    naive = per_second["naive: objects.create() per line"]
    copy = max(per_second[f"raw COPY ({name}) into the lines table"] for name in COPY_FORMATS)
    rows = [
        [name, rate, capture / rate, rate / naive, rate / copy] for name, rate in per_second.items()
    ]
    rows.append([])
    extra = captured - plain
    count = TIMED_PRINTS[size]
    rows.append([f"{count:,} prints with {TIMED_PRINT_PAUSE * 1000:g} ms sleeps: plain s", plain])
    rows.append(["... captured until stored, s", captured])
    rows.append(["... extra wall time, ms (per line µs)", extra * 1000, extra / count * 1e6])
    rows.append([])
    rows += [[f"COPY, {name}", rate, None, None, rate / copy] for name, rate in indexes.items()]
    worker = per_second["celery-tasklog, worker process"]
    binary_copy = per_second["raw COPY (binary) into the lines table"]
    rows.append([])
    rows.append(["in process / raw binary COPY (target >= 0.9)", capture / binary_copy])
    rows.append(["worker / raw binary COPY (target >= 0.85)", worker / binary_copy])
    rows.append(["slowdown of a task printing a line per ms, % (< 1)", 100 * extra / plain])
    figures = {
        "size": size,
        "lines": LINES[size],
        "lines_per_s": {name: round(rate) for name, rate in per_second.items()},
        "capture_vs_naive": round(capture / naive, 1),
        "capture_vs_copy": round(capture / copy, 3),
        "worker_vs_naive": round(worker / naive, 1),
        "worker_vs_copy": round(worker / copy, 3),
        "capture_vs_devnull": round(capture / per_second["print to /dev/null"], 3),
        "capture_vs_file": round(capture / per_second["print to a local file"], 3),
        "timed_prints_extra_ms": round(extra * 1000, 1),
        "timed_prints_extra_pct": round(100 * extra / plain, 2),
        "in_process_vs_binary_copy": round(capture / binary_copy, 3),
        "worker_vs_binary_copy": round(worker / binary_copy, 3),
        "copy_rows_per_s_by_indexes": {variant: round(rate) for variant, rate in indexes.items()},
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run(
        "throughput",
        __doc__,
        measure,
        ["", "lines/s", "capture is x", "x naive", "x fastest raw COPY"],
        argv,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
