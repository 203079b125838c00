"""Print-to-screen latency: a task in a real worker prints a line every 50 ms with its own clock;
an SSE client of the web page's event stream (uvicorn, ASGI, a logged-in staff user) and
``manage.py tasklog_follow`` each note when every line reaches them.

    python -m benchmarks.latency [--quick]

Only lines printed after a reader's first bytes arrived count, so a reader's start-up is not
taken for latency. Default settings: FLUSH_INTERVAL 0.2 s and the SSE poll of 0.25 s.
"""

from __future__ import annotations

import http.client
import re
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from benchmarks import common

LINES = {"full": 500, "quick": 50}
INTERVAL = 0.05
WARMUP = 2.0
READ_TIMEOUT = 30.0
PRINTED_AT = re.compile(r"line (\d+) printed at (\d+\.\d+)")


def sse_arrivals(address: tuple[str, int], cookie: str, task_id: str) -> Iterator[tuple]:
    """``(arrival time, text)`` of each line of the event stream, as it arrives."""
    connection = http.client.HTTPConnection(*address, timeout=READ_TIMEOUT)
    try:
        connection.request(
            "GET",
            f"/tasklog/{task_id}/events/",
            headers={"Cookie": cookie, "Accept": "text/event-stream"},
        )
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"event stream answered {response.status}: {response.read()[:200]}")
        while raw := response.readline():
            yield time.time(), raw.decode()
    finally:
        connection.close()


def follow_arrivals(task_id: str) -> Iterator[tuple]:
    """``(arrival time, text)`` of each line ``manage.py tasklog_follow`` writes."""
    process = common.manage("tasklog_follow", task_id)
    try:
        for raw in process.stdout:
            yield time.time(), raw.decode()
    finally:
        process.kill()
        process.wait()


def delays(arrivals: Iterable[tuple], count: int) -> list[float]:
    """Seconds from print to arrival of each line printed after the reader's first bytes."""
    result = []
    ready_at = None
    for arrived, text in arrivals:
        ready_at = ready_at or arrived
        match = PRINTED_AT.search(text)
        if match is None:
            continue
        number, printed = int(match[1]), float(match[2])
        if printed > ready_at:
            result.append(arrived - printed)
        if number == count:
            return result
    raise RuntimeError(f"the stream ended before line {count}")


def measure(size: str) -> tuple[list[list], dict]:
    from benchmarks.tasks import print_clocked
    from tasklog.models import TaskLog

    count = LINES[size]
    with common.workers(), common.web_server() as address:
        cookie = common.staff_session_cookie()
        task_id = print_clocked.delay(count, INTERVAL, WARMUP).id
        common.wait_until(
            lambda: TaskLog.objects.filter(task_id=task_id, started__isnull=False).exists(),
            READ_TIMEOUT,
            "task started",
        )
        with ThreadPoolExecutor(2) as readers:
            sse = readers.submit(lambda: delays(sse_arrivals(address, cookie, task_id), count))
            follow = readers.submit(lambda: delays(follow_arrivals(task_id), count))
            results = {"SSE (uvicorn)": sse.result(), "tasklog_follow": follow.result()}
    rows = []
    figures = {"size": size, "lines": count, "interval_s": INTERVAL}
    for reader, seconds in results.items():
        stats = common.percentiles(seconds)
        rows.append([reader, len(seconds), stats["p50"], stats["p95"], stats["max"]])
        figures[reader.split()[0].lower()] = {"samples": len(seconds), **stats}
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("latency", __doc__, measure, ["reader", "lines", "p50 s", "p95 s", "max s"], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
