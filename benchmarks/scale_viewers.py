"""Many live viewers of one task: polling (``CELERY_TASKLOG_PUSH=False``) against pushed views.

    python -m benchmarks.scale_viewers [--quick]

For each count of viewers (1 / 100 / 1,000; quick: 1 / 10) and each mode, the example project
runs under a fresh uvicorn (one process), that many SSE clients (raw asyncio streams in this
process, a logged-in staff user) connect to one task's stream, and a real worker's task then
prints a line with its own clock every ``INTERVAL`` seconds. Measured:

- idle queries/s: transactions committed on the benchmark database (``pg_stat_database``)
  while every viewer waits and the task prints nothing;
- busy queries/s: the same while the task prints (its own flushes included, the same in both
  modes);
- print-to-client latency p50/p95 over every line every viewer received;
- the web process's CPU (percent of one core) while busy, and its RSS at the end.

PostgreSQL only (NOTIFY). A run of 1,000 viewers needs ``ulimit -n`` above 2,100 (raised here
to the hard limit when it can be).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

VIEWERS = {"full": (1, 100, 1000), "quick": (1, 10)}
LINES = {"full": 10, "quick": 3}
INTERVAL = 1.0
IDLE_WINDOW = {"full": 5.0, "quick": 2.0}
CONNECT_TIMEOUT = 180.0
PRINTED_AT = re.compile(r"line (\d+) printed at (\d+\.\d+)")
MODES = {"polling": "false", "push": "true"}


class Viewer:
    """One SSE client: whether its stream is open, and each line's print-to-arrival delay."""

    def __init__(self):
        self.ready = False
        self.delays: list[float] = []
        self.last_line = 0


async def watch(address: tuple[str, int], cookie: str, task_id: str, viewer: Viewer) -> None:
    reader, writer = await asyncio.open_connection(*address, limit=2**20)
    try:
        writer.write(
            f"GET /tasklog/{task_id}/events/ HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        while raw := await reader.readline():
            viewer.ready = viewer.ready or raw.startswith(b"event:")  # its first read is done
            match = PRINTED_AT.search(raw.decode(errors="replace"))
            if match:
                viewer.delays.append(time.time() - float(match[2]))
                viewer.last_line = int(match[1])
            if b"event: end" in raw:
                return
    finally:
        writer.close()


def committed_transactions() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def transactions_per_s(seconds: float) -> float:
    """Committed transactions per second over ``seconds`` (stats settle for a second first)."""
    before = await asyncio.to_thread(committed_transactions)
    await asyncio.sleep(seconds)
    after = await asyncio.to_thread(committed_transactions)
    return (after - before) / seconds


async def one_run(size: str, mode: str, count: int) -> dict:
    from benchmarks.tasks import print_clocked_after

    lines = LINES[size]
    gate = Path(tempfile.gettempdir()) / f"tasklog-bench-gate-{os.getpid()}-{mode}-{count}"
    os.environ["CELERY_TASKLOG_PUSH"] = MODES[mode]
    with common.web_server_process() as (address, process):
        cookie = await asyncio.to_thread(common.staff_session_cookie)
        task_id = print_clocked_after.delay(str(gate), lines, INTERVAL).id
        viewers = [Viewer() for _ in range(count)]
        watchers = [asyncio.ensure_future(watch(address, cookie, task_id, v)) for v in viewers]
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while sum(v.ready for v in viewers) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        connected = sum(v.ready for v in viewers)
        await asyncio.sleep(1.0)  # stats of the connecting requests settle
        idle = await transactions_per_s(IDLE_WINDOW[size])
        gate.touch()
        cpu_before, started = cpu_seconds(process.pid), time.monotonic()
        busy = asyncio.ensure_future(transactions_per_s(lines * INTERVAL))
        await asyncio.wait(watchers, timeout=lines * INTERVAL + 60)
        cpu = (cpu_seconds(process.pid) - cpu_before) / (time.monotonic() - started)
        busy_rate = await busy
        rss = rss_mb(process.pid)
        for watcher in watchers:
            watcher.cancel()
        gate.unlink(missing_ok=True)
    delays = [delay for viewer in viewers for delay in viewer.delays]
    stats = common.percentiles(delays) if delays else {"p50": None, "p95": None}
    return {
        "viewers": count,
        "mode": mode,
        "connected": connected,
        "complete": sum(v.last_line == lines for v in viewers),
        "idle_queries_per_s": round(idle, 1),
        "busy_queries_per_s": round(busy_rate, 1),
        "latency_p50_s": stats["p50"],
        "latency_p95_s": stats["p95"],
        "cpu_percent": round(100 * cpu, 1),
        "rss_mb": round(rss, 1),
    }


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def measure(size: str) -> tuple[list[list], dict]:
    from benchmarks.tasks import print_clocked_after  # noqa: F401 (registered for the worker)

    open_files = raise_open_files_limit()
    runs = []
    with common.workers():
        for count in VIEWERS[size]:
            for mode in MODES:
                runs.append(asyncio.run(one_run(size, mode, count)))
                print(runs[-1], file=sys.stderr, flush=True)
    rows = [list(run.values()) for run in runs]
    figures = {"size": size, "open_files_limit": open_files, "interval_s": INTERVAL, "runs": runs}
    for count in VIEWERS[size]:
        polling, push = (r for r in runs if r["viewers"] == count)
        if push["busy_queries_per_s"]:
            ratio = polling["busy_queries_per_s"] / push["busy_queries_per_s"]
            figures[f"busy_queries_ratio_{count}"] = round(ratio, 1)
    return rows, figures


HEADERS = [
    "viewers",
    "mode",
    "connected",
    "got every line",
    "idle q/s",
    "busy q/s",
    "p50 s",
    "p95 s",
    "web CPU %",
    "web RSS MB",
]


def main(argv: list[str] | None = None) -> int:
    common.run("scale_viewers", __doc__, measure, HEADERS, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
