"""Big logs: with one task of 1,000,000 lines in a table of 5,000,000, the time to first byte of
the task page, a JSON page, the admin lists (uvicorn, ASGI, a logged-in staff user),
``tasklog_show --tail 100`` and ``tasklog_follow``; then the time and peak memory of pruning
that task, against a task of 100,000 lines, to show memory does not grow with the lines.

    python -m benchmarks.biglogs [--quick]

The tables are filled with ``INSERT ... SELECT generate_series`` and analyzed, as autovacuum
would have done on a table that grew this big. Commands are timed from process start, so
their figures include Python and Django starting up (shown on its own as ``--help``).
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time

from benchmarks import common

SIZES = {
    "full": {"big": 1_000_000, "medium": 100_000, "table": 5_000_000, "filler": 10_000},
    "quick": {"big": 10_000, "medium": 1_000, "table": 50_000, "filler": 1_000},
}
BIG, MEDIUM = "bench-big-log", "bench-medium-log"
REPEAT = 3

FILL_LOGS = """
INSERT INTO tasklog_tasklog (task_id, task_name, worker, started, finished, last_seen, attempts,
    lines, dropped, truncated, interrupted, launched_by, launched_by_user_id, launched_from)
SELECT id, 'benchmarks.big', 'bench@host', now() - interval '1 day', now(), now(), 1, lines,
    0, false, false, '', '', ''
FROM unnest(%(ids)s::text[], %(lines)s::int[]) AS logs(id, lines)
"""
FILL_LINES = """
INSERT INTO tasklog_tasklogline (task_id, seq, timestamp, stream, level, message)
SELECT t.task_id, s, t.started + s * interval '1 ms', 'stdout', NULL,
    'line ' || s || ' of a big log, long enough to look like real output'
FROM tasklog_tasklog t, generate_series(1, t.lines) s
"""
PRUNE = """
import json, resource, sys, time
import django
django.setup()
from tasklog.models import TaskLog
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
logs, lines = TaskLog.objects.filter(task_id=sys.argv[1]).delete_with_lines()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"lines": lines, "seconds": round(seconds, 3), "rss_mb": round(peak / 1024, 1),
                  "growth_mb": round((peak - before) / 1024, 1)}))
"""


def fill(size: dict) -> float:
    """Seconds to write the big, the medium and the filler logs, ``size["table"]`` lines."""
    fillers = (size["table"] - size["big"] - size["medium"]) // size["filler"]
    ids = [BIG, MEDIUM] + [f"bench-filler-{number}" for number in range(fillers)]
    lines = [size["big"], size["medium"]] + [size["filler"]] * fillers
    start = time.perf_counter()
    with common.raw_connection() as connection:
        connection.execute(FILL_LOGS, {"ids": ids, "lines": lines})
        connection.execute(FILL_LINES)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE tasklog_tasklog, tasklog_tasklogline")
    return time.perf_counter() - start


def first_byte(address: tuple[str, int], cookie: str, path: str) -> float:
    """Seconds from sending a GET to its first body byte; the page must answer 200."""
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        start = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        response.read(1)
        seconds = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        return seconds
    finally:
        connection.close()


def first_output(*arguments: str) -> float:
    """Seconds from starting ``manage.py ...`` to its first line of output."""
    start = time.perf_counter()
    process = common.manage(*arguments)
    try:
        if not process.stdout.readline():
            raise RuntimeError(f"manage.py {' '.join(arguments)} wrote nothing")
        return time.perf_counter() - start
    finally:
        process.kill()
        process.wait()


def median_of(function, *arguments) -> float:
    return statistics.median(function(*arguments) for _ in range(REPEAT))


def prune(task_id: str) -> dict:
    """Delete one task's log in a fresh process; its time and peak memory."""
    result = subprocess.run(
        [sys.executable, "-c", PRUNE, task_id],
        cwd=common.ROOT,
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def measure(size_name: str) -> tuple[list[list], dict]:
    size = SIZES[size_name]
    fill_seconds = fill(size)
    pages = {
        "task page": f"/tasklog/{BIG}/",
        "JSON page (500 lines from the middle)": f"/tasklog/{BIG}/lines/?after={size['big'] // 2}",
        "admin: task logs": "/admin/tasklog/tasklog/",
        "admin: lines": "/admin/tasklog/tasklogline/",
        "admin: lines of the big task": f"/admin/tasklog/tasklogline/?task_id={BIG}",
    }
    commands = {
        "manage.py tasklog_show --help (start-up only)": ("tasklog_show", "--help"),
        "tasklog_show --tail 100": ("tasklog_show", BIG, "--tail", "100"),
        "tasklog_follow, first line": ("tasklog_follow", BIG),
    }
    first_bytes = {}
    with common.web_server() as address:
        cookie = common.staff_session_cookie()
        first_byte(address, cookie, "/admin/")  # the server's first request imports the admin
        for name, path in pages.items():
            first_bytes[name] = median_of(first_byte, address, cookie, path)
    for name, arguments in commands.items():
        first_bytes[name] = median_of(first_output, *arguments)
    pruned = {"medium": prune(MEDIUM), "big": prune(BIG)}
    rows = [[f"fill {size['table']:,} lines (analyzed)", fill_seconds, ""]]
    rows += [[name, seconds, ""] for name, seconds in first_bytes.items()]
    for which, figures in pruned.items():
        rows.append(
            [
                f"prune {figures['lines']:,} lines ({which})",
                figures["seconds"],
                f"peak RSS {figures['rss_mb']:.0f} MB, +{figures['growth_mb']:.1f} MB",
            ]
        )
    figures = {
        "size": size_name,
        **{key: size[key] for key in ("big", "table")},
        "first_byte_s": {name: round(seconds, 3) for name, seconds in first_bytes.items()},
        "prune": pruned,
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("biglogs", __doc__, measure, ["", "seconds (median of 3)", ""], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
