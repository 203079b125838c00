"""Search in a big log: with one task of 1,000,000 lines in a table of 5,000,000 (the tables of
``biglogs``), the time to the first page of hits of the JSON endpoint (plain text and regular
expression, a common and a rare hit, with the match count), to a line's context (``around=``),
to a filtered page, and the whole run of ``tasklog_show --grep`` for a rare hit.

    python -m benchmarks.search [--quick]

Every request is timed to its first body byte through uvicorn as a logged-in staff user; the
command from process start to its end (Python and Django start-up included).
"""

from __future__ import annotations

import sys
import time
from urllib.parse import urlencode

from benchmarks import common
from benchmarks.biglogs import BIG, SIZES, fill, first_byte, median_of


def run_time(*arguments: str) -> float:
    """Seconds from starting ``manage.py ...`` to its end; it must succeed."""
    start = time.perf_counter()
    process = common.manage(*arguments)
    output, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(arguments)} failed: {output[-500:]}")
    return time.perf_counter() - start


def measure(size_name: str) -> tuple[list[list], dict]:
    size = SIZES[size_name]
    big = size["big"]
    fill_seconds = fill(size)
    rare = f"line {big - 1} of"  # one hit, near the end: the whole log is read to find it
    searches = {
        "plain, common (first page of 500 hits, count to 10,000)": {"q": "BIG LOG"},
        "plain, one hit near the end": {"q": rare},
        "regex, common": {"q": r"line \d+5 of", "regex": "1"},
        "regex, one hit near the end": {"q": rf"^line {big - 1}\b", "regex": "1"},
        "context of a line in the middle (around, 50 each side)": {
            "around": big // 2,
            "context": 50,
            "q": "line",
        },
        "next hit after the middle (limit=1)": {"q": "5 of a", "after": big // 2, "limit": 1},
        "filter: stream=stderr (no line matches)": {"stream": "stderr"},
    }
    timings = {}
    with common.web_server() as address:
        cookie = common.staff_session_cookie()
        first_byte(address, cookie, "/admin/")  # the server's first request imports the admin
        for name, params in searches.items():
            path = f"/tasklog/{BIG}/lines/?{urlencode(params)}"
            timings[name] = median_of(first_byte, address, cookie, path)
    commands = {
        "manage.py tasklog_show --help (start-up only)": ("tasklog_show", "--help"),
        "tasklog_show --grep <one hit near the end>": ("tasklog_show", BIG, "--grep", rare),
        "tasklog_show --grep --regex -C 3 <one hit>": (
            *("tasklog_show", BIG, "--grep", rf"^line {big - 1}\b", "--regex", "-C", "3"),
        ),
    }
    for name, arguments in commands.items():
        timings[name] = median_of(run_time, *arguments)
    rows = [[f"fill {size['table']:,} lines (analyzed)", fill_seconds]]
    rows += [[name, seconds] for name, seconds in timings.items()]
    figures = {
        "size": size_name,
        **{key: size[key] for key in ("big", "table")},
        "seconds": {name: round(seconds, 3) for name, seconds in timings.items()},
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("search", __doc__, measure, ["", "seconds (median of 3)"], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
