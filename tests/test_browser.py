"""The task log page in headless Chromium against a live ASGI server (uvicorn in a thread)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse
from playwright.sync_api import expect, sync_playwright

from tasklog.models import TaskLog
from tests.live_server import LiveServer
from tests.logs import TASK_ID, add_lines, make_log, make_user

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = "<script>alert(1)</script>"
AT_BOTTOM = "box => box.scrollTop + box.clientHeight >= box.scrollHeight - 8"


@pytest.fixture
def live_server_url(transactional_db):
    """The test project served by uvicorn (ASGI, static files included) on a free port."""
    server = LiveServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.dialogs = dialogs
        yield page
        browser.close()


def outside_the_browser_loop(function, *args, **kwargs):
    """Run ORM code in a thread: Playwright's sync API keeps an event loop in this one."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def log_in(page, base_url: str, next_path: str) -> None:
    outside_the_browser_loop(make_user, "viewer", password="viewer-pass-123")
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "viewer-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_log_text_is_rendered_as_text_initially_and_live(live_server_url, browser_page):
    page = browser_page
    outside_the_browser_loop(
        make_log, messages=["plain", XSS, "\x1b[1;31mbold red\x1b[0m and plain"]
    )
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    lines = page.locator(".tasklog-line")
    expect(lines).to_have_count(3)
    expect(page.locator("[data-field=live]")).to_be_visible()

    outside_the_browser_loop(add_lines, TASK_ID, [f"live {XSS}", "\x1b[38;5;82mgreen 256\x1b[0m"])
    expect(lines).to_have_count(5)

    assert lines.nth(1).locator(".tasklog-message").inner_text() == XSS
    assert lines.nth(3).locator(".tasklog-message").inner_text() == f"live {XSS}"
    assert page.locator(".tasklog-lines script").count() == 0
    assert page.dialogs == []
    red = lines.nth(2).locator("span.tasklog-fg-1.tasklog-bold")
    expect(red).to_have_text("bold red")
    green = lines.nth(4).locator(".tasklog-message span")
    expect(green).to_have_css("color", "rgb(95, 255, 0)")
    screenshot(page, "tasklog-escaping.png")


def test_a_long_log_opens_at_its_end_and_loads_earlier_lines_when_scrolled_up(
    live_server_url, browser_page
):
    """Virtual scrolling (issue 13): only the rows on screen are in the DOM, at any position."""
    page = browser_page
    outside_the_browser_loop(make_log, messages=[f"line {n}" for n in range(1, 1201)])
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    lines = page.locator(".tasklog-line")
    expect(lines.last).to_have_attribute("data-seq", "1200")
    assert lines.count() < 200
    box = page.locator(".tasklog-lines")
    assert box.evaluate(AT_BOTTOM)

    box.evaluate("box => { box.scrollTop = 0; }")
    expect(lines.first.locator(".tasklog-message")).to_have_text("line 1")
    assert lines.count() < 200


def test_auto_scroll_stops_when_the_reader_scrolls_up_and_resumes_at_the_bottom(
    live_server_url, browser_page
):
    page = browser_page
    outside_the_browser_loop(make_log, messages=[f"line {n}" for n in range(1, 201)])
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    box = page.locator(".tasklog-lines")
    lines = page.locator(".tasklog-line")
    jump = page.locator(".tasklog-jump")
    expect(lines.last).to_have_attribute("data-seq", "200")
    expect(page.locator("[data-field=live]")).to_be_visible()
    assert box.evaluate(AT_BOTTOM)

    box.evaluate("box => { box.scrollTop = 0; }")
    expect(jump).to_be_visible()
    height = box.evaluate("box => box.scrollHeight")
    outside_the_browser_loop(add_lines, TASK_ID, ["while reading"])
    page.wait_for_function(
        f"() => document.querySelector('.tasklog-lines').scrollHeight > {height}"
    )
    assert box.evaluate("box => box.scrollTop") == 0
    expect(lines.first).to_have_attribute("data-seq", "1")

    jump.click()
    expect(jump).to_be_hidden()
    outside_the_browser_loop(add_lines, TASK_ID, ["following again"])
    expect(lines.last).to_have_attribute("data-seq", "202")
    assert box.evaluate(AT_BOTTOM)


def wait_for_log(task_id: str, timeout: float = 30.0):
    """The TaskLog the worker creates when the task starts."""
    deadline = time.monotonic() + timeout
    while (log := TaskLog.objects.find(task_id)) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id} wrote no log within {timeout:.0f} s", pytrace=False)
        time.sleep(0.05)
    return log


RECORD_PROGRESS = """() => {
    window.progressSeen = [];
    const field = document.querySelector('[data-field="progress"]');
    new MutationObserver(() => window.progressSeen.push(field.textContent))
        .observe(field, {childList: true, characterData: true, subtree: true});
}"""


def test_watch_a_real_task_print_progress_and_succeed(
    worker_factory, live_server_url, browser_page
):
    from example.tasks import timed_print_task

    worker_factory()
    page = browser_page
    log_in(page, live_server_url, reverse("admin:index"))
    task_id = outside_the_browser_loop(lambda: timed_print_task.delay(8, 0.5).id)
    log = outside_the_browser_loop(wait_for_log, task_id)
    page.goto(live_server_url + reverse("tasklog:task_log", args=[task_id]))
    page.evaluate(RECORD_PROGRESS)
    lines_at_load = page.locator(".tasklog-line").count()

    finished = page.locator("[data-field=finished]")
    expect(finished).to_have_text("Finished: SUCCESS", timeout=30_000)
    messages = page.locator(".tasklog-stream-stdout .tasklog-message").all_inner_texts()
    assert messages == [f"Line {n} of 8" for n in range(1, 9)]
    assert lines_at_load < page.locator(".tasklog-line").count()
    # The logger is a field of its own (issue 13), shown between the level and the message.
    record = page.locator(".tasklog-stream-log .tasklog-message").first
    logger = record.locator(".tasklog-logger").inner_text()
    assert logger.startswith("example.")
    assert record.inner_text() == f"INFO {logger} Printing 8 lines, one every 0.5 s"
    progress_seen = page.evaluate("window.progressSeen")
    assert any(value not in {"—", "100%"} for value in progress_seen), progress_seen
    expect(page.locator("[data-field=progress]")).to_have_text("100%")
    expect(page.locator("[data-field=state]")).to_have_text("SUCCESS")
    expect(page.locator("[data-field=live]")).to_be_hidden()
    assert log.task_name == "example.tasks.timed_print_task"
    screenshot(page, "tasklog-worker-success.png")


def test_markup_printed_by_a_real_task_stays_text(worker_factory, live_server_url, browser_page):
    from tests.tasks import print_numbered

    worker_factory()
    page = browser_page
    log_in(page, live_server_url, reverse("admin:index"))
    task_id = outside_the_browser_loop(lambda: print_numbered.delay(XSS, 3).id)
    outside_the_browser_loop(wait_for_log, task_id)
    page.goto(live_server_url + reverse("tasklog:task_log", args=[task_id]))

    expect(page.locator("[data-field=finished]")).to_have_text("Finished: SUCCESS")
    assert page.locator(".tasklog-stream-stdout .tasklog-message").inner_text() == f"{XSS} 1 out"
    assert page.locator(".tasklog-stream-stderr .tasklog-message").inner_text() == f"{XSS} 3 err"
    assert page.locator(".tasklog-lines script").count() == 0
    assert page.dialogs == []


def test_the_page_shows_its_lines_when_its_script_does_not_load(live_server_url, browser_page):
    """As under uvicorn without a static files server: tasklog.js answers 404."""
    page = browser_page
    outside_the_browser_loop(make_log, messages=["first", XSS, "\x1b[1;31mbold red\x1b[0m"])
    page.route("**/tasklog.js", lambda route: route.fulfill(status=404, body="Not Found"))
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    messages = page.locator(".tasklog-line .tasklog-message")
    expect(messages).to_have_text(["first", XSS, "bold red"])
    expect(page.locator(".tasklog-empty")).to_be_hidden()
    assert page.locator(".tasklog-lines script").count() == 0
    assert page.dialogs == []
    screenshot(page, "tasklog-without-script.png")


def test_queued_and_started_are_shown_in_the_readers_time_zone(live_server_url, browser_page):
    """Found in the first-time trial: Queued was in the server's time zone, Started the reader's."""
    page = browser_page.context.browser.new_page(timezone_id="Asia/Kolkata")  # UTC+05:30
    queued = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    outside_the_browser_loop(
        make_log,
        messages=["one"],
        queued=queued,
        queue="reports",
        started=queued + timedelta(seconds=2),
    )
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    local = page.evaluate("iso => new Date(iso).toLocaleString()", queued.isoformat())
    assert "8:34:05" in local  # 03:04:05 UTC read in Kolkata
    expect(page.locator("[data-field=queued]")).to_have_text(f"{local} (reports)")
    started = page.evaluate(
        "iso => new Date(iso).toLocaleString()", (queued + timedelta(seconds=2)).isoformat()
    )
    expect(page.locator("[data-field=started]")).to_have_text(started)
