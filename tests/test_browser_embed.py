"""The live log component in pages of its own: the example project's launch page, rendered by
``{% tasklog_live %}``, in headless Chromium against uvicorn and a real worker.

Tasks are published before any worker runs, so each log starts as "waiting in queue" and must
go live by itself when the worker starts.
"""

# ruff: noqa: F811 (the fixtures imported from test_browser are parameters here)
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.http import urlencode
from playwright.sync_api import expect

from tests.logs import TASK_ID, make_log
from tests.test_browser import (  # noqa: F401 (fixtures)
    XSS,
    browser_page,
    live_server_url,
    log_in,
    outside_the_browser_loop,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LIVE_TIMEOUT = 60_000


@pytest.fixture
def example_project(settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "example"]
    settings.ROOT_URLCONF = "example.urls"


def launch_page(base_url: str, *task_ids: str) -> str:
    return f"{base_url}/?{urlencode([('task', task_id) for task_id in task_ids])}"


def publish(count: int, interval: float) -> str:
    from example.tasks import timed_print_task

    return outside_the_browser_loop(lambda: timed_print_task.delay(count, interval).id)


@pytest.mark.usefixtures("example_project")
def test_two_logs_on_one_page_wait_in_the_queue_then_each_follows_its_task_to_the_end(
    worker_factory, live_server_url, browser_page
):
    page = browser_page
    log_in(page, live_server_url, reverse("admin:index"))
    short, long = publish(3, 0.3), publish(6, 0.3)
    page.goto(launch_page(live_server_url, short, long))

    logs = page.locator("[data-tasklog]")
    expect(logs).to_have_count(2)
    for log in (logs.nth(0), logs.nth(1)):
        expect(log.locator("[data-field=state]")).to_have_text("QUEUED")
        expect(log.locator("[data-field=waiting]")).to_be_visible()
        expect(log.locator("[data-field=waiting-queue]")).to_have_text("celery")
    screenshot(page, "tasklog-embedded-queued.png")
    answer = page.request.get(live_server_url + reverse("tasklog:task_log_lines", args=[short]))
    assert (answer.status, answer.json()["task"]["state"]) == (200, "QUEUED")

    worker_factory()

    for log, count in ((logs.nth(0), 3), (logs.nth(1), 6)):
        expect(log.locator("[data-field=finished]")).to_have_text(
            "Finished: SUCCESS", timeout=LIVE_TIMEOUT
        )
        printed = log.locator(".tasklog-stream-stdout .tasklog-message")
        expect(printed).to_have_text([f"Line {n} of {count}" for n in range(1, count + 1)])
        expect(log.locator(".tasklog-stream-marker")).to_have_count(0)
        expect(log.locator("[data-field=attempts]")).to_have_text("1")
        expect(log.locator("[data-field=waiting]")).to_be_hidden()
        expect(log.locator("[data-field=queue-wait]")).to_have_text(re.compile(r"^\d+\.\d s$"))
        expect(log.locator("[data-field=progress]")).to_have_text("100%")
    assert page.locator("[data-tasklog] [id]").count() == 0
    screenshot(page, "tasklog-embedded-finished.png")


@pytest.mark.usefixtures("example_project")
def test_the_page_styles_the_log_with_custom_properties_and_no_admin_css(
    live_server_url, browser_page
):
    page = browser_page
    outside_the_browser_loop(make_log, messages=["styled"])
    log_in(page, live_server_url, reverse("admin:index"))
    page.goto(launch_page(live_server_url, TASK_ID))

    expect(page.locator(".tasklog-line")).to_have_count(1)
    assert page.locator('link[href*="/admin/"]').count() == 0
    # The example page sets --tasklog-height: 24rem and --tasklog-button-bg: #0b6e4f.
    expect(page.locator(".tasklog-lines")).to_have_css("height", "384px")
    download = page.locator("a.tasklog-button")
    expect(download).to_have_css("background-color", "rgb(11, 110, 79)")
    page.add_style_tag(content=":root { --tasklog-lines-bg: rgb(1, 2, 3); }")
    expect(page.locator(".tasklog-lines")).to_have_css("background-color", "rgb(1, 2, 3)")


@pytest.mark.abuse
@pytest.mark.usefixtures("example_project")
def test_hostile_text_and_task_ids_stay_text_in_the_embedded_log(live_server_url, browser_page):
    page = browser_page
    hostile_id = f'"><img src=x onerror=alert(2)>{XSS}'
    outside_the_browser_loop(make_log, messages=[XSS, f"</script>{XSS}", "\x1b]0;title\x07x"])
    outside_the_browser_loop(make_log, hostile_id, messages=[f"other {XSS}"])
    log_in(page, live_server_url, reverse("admin:index"))
    page.goto(launch_page(live_server_url, TASK_ID, hostile_id, "é" * 300, "\u202e" + XSS))

    logs = page.locator(".tasklog")
    expect(logs).to_have_count(4)
    first, second = page.locator("[data-tasklog]").nth(0), page.locator("[data-tasklog]").nth(1)
    expect(first.locator(".tasklog-message")).to_have_text([XSS, f"</script>{XSS}", "x"])
    expect(second.locator(".tasklog-message")).to_have_text([f"other {XSS}"])
    expect(second.locator("code")).to_have_text(hostile_id)
    expect(logs.nth(2)).to_have_text("You may not read the log of this task.")
    assert page.locator(".tasklog-lines script, .tasklog img").count() == 0
    assert page.dialogs == []
