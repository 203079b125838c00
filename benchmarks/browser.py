"""The log reader in a browser on a big log: with one task of 1,000,000 lines in a table of
5,000,000 (the tables of ``biglogs``), headless Chromium (Playwright) on the task page under
uvicorn measures a line link's time to visible (``#L500000``), the DOM's line elements and the
JS heap before and after scrolling from the first line to the last, and the time to the first
search hit on screen.

    python -m benchmarks.browser [--quick]

Times are read in the page (``performance.now()``, from the start of navigation) for the line
link, and around the key press for the search. The heap is CDP's ``JSHeapUsedSize`` after a
forced garbage collection.
"""

from __future__ import annotations

import sys
import time

from benchmarks import common
from benchmarks.biglogs import BIG, SIZES, fill

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROWS = ".tasklog-viewport .tasklog-line"
SCROLL_STEPS = 200
LOADED = (
    f"() => document.querySelectorAll('{ROWS}').length > 0"
    f" && !document.querySelector('{ROWS}.tasklog-pending')"
)
SHOWN = """seq => {
    const row = document.querySelector(`.tasklog-viewport .tasklog-line[data-seq="${seq}"]`);
    if (!row || row.classList.contains("tasklog-pending")) return false;
    const box = row.closest(".tasklog-lines").getBoundingClientRect();
    const rect = row.getBoundingClientRect();
    return rect.top >= box.top - 1 && rect.bottom <= box.bottom + 1 ? performance.now() : false;
}"""


def heap_mb(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 1e6


def dom_rows(page) -> int:
    return page.locator(ROWS).count()


def scroll_to(page, fraction: float) -> None:
    page.locator(".tasklog-lines").evaluate(
        "(box, f) => { box.scrollTop = f * (box.scrollHeight - box.clientHeight); }", fraction
    )
    # The rows are drawn on the next animation frame: wait for it, then for their lines.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.wait_for_function(LOADED, timeout=30_000)


def measure(size_name: str) -> tuple[list[list], dict]:
    from playwright.sync_api import sync_playwright

    size = SIZES[size_name]
    big = size["big"]
    middle = big // 2
    fill_seconds = fill(size)
    session = common.staff_session_cookie().split("=", 1)[1]  # the ORM, before Playwright's loop
    with common.web_server() as (host, port), sync_playwright() as playwright:
        base = f"http://{host}:{port}"
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        page = context.new_page()
        page.goto(f"{base}/admin/")  # the server's first request imports the admin
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")

        page.goto(f"{base}/tasklog/{BIG}/#L{middle}")
        link_ms = page.wait_for_function(SHOWN, arg=middle, timeout=30_000).json_value()

        scroll_to(page, 0)
        before = {"rows": dom_rows(page), "heap_mb": heap_mb(cdp)}
        most_rows = 0
        start = time.perf_counter()
        for step in range(SCROLL_STEPS + 1):
            scroll_to(page, step / SCROLL_STEPS)
            most_rows = max(most_rows, dom_rows(page))
        scroll_seconds = time.perf_counter() - start
        after = {"rows": dom_rows(page), "heap_mb": heap_mb(cdp)}
        last_shown = page.evaluate(SHOWN, big) is not False
        assert last_shown, "the last line is not on screen at the end of the scrollbar"

        query = page.locator(".tasklog-query")
        searches = {}
        for name, text in {
            "rare (one hit, in the middle)": f"line {middle} of",
            "common (first of many)": "big log",
        }.items():
            query.fill(text)
            start = time.perf_counter()
            query.press("Enter")
            page.wait_for_selector(f"{ROWS}.tasklog-hit", timeout=30_000)
            searches[name] = time.perf_counter() - start
            query.fill("")
            query.press("Enter")
        browser.close()
    rows = [
        [f"fill {size['table']:,} lines (analyzed)", f"{fill_seconds:.1f} s"],
        [f"line link #L{middle}: visible, from navigation start", f"{link_ms:.0f} ms"],
        ["DOM line elements at the first line", before["rows"]],
        [f"DOM line elements, most while scrolling to the last ({SCROLL_STEPS} jumps)", most_rows],
        ["DOM line elements at the last line", after["rows"]],
        ["JS heap at the first line (after GC)", f"{before['heap_mb']:.1f} MB"],
        ["JS heap at the last line (after GC)", f"{after['heap_mb']:.1f} MB"],
        [
            f"scrolling first to last in {SCROLL_STEPS} jumps, each loaded",
            f"{scroll_seconds:.1f} s",
        ],
    ]
    rows += [
        [f"search, {name}: first hit on screen", f"{s * 1000:.0f} ms"]
        for name, s in searches.items()
    ]
    figures = {
        "size": size_name,
        **{key: size[key] for key in ("big", "table")},
        "line_link_ms": round(link_ms),
        "dom_rows": {"first": before["rows"], "most": most_rows, "last": after["rows"]},
        "heap_mb": {"first": round(before["heap_mb"], 1), "last": round(after["heap_mb"], 1)},
        "scroll_s": round(scroll_seconds, 1),
        "search_ms": {name: round(s * 1000) for name, s in searches.items()},
    }
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    common.run("browser", __doc__, measure, ["", "measured"], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
