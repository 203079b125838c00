"""ANSI output of a real task in headless Chromium: colours, attributes and OSC 8 links as
ansi.js renders them on the task page, against uvicorn and a real worker."""

# ruff: noqa: F811 (the fixtures imported from test_browser are parameters here)
from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.logs import TASK_ID, make_log
from tests.test_browser import (  # noqa: F401 (fixtures)
    XSS,
    browser_page,
    live_server_url,
    log_in,
    outside_the_browser_loop,
    screenshot,
    wait_for_log,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ESC = "\x1b"
ST = ESC + "\\"


def osc8(target: str, text: str) -> str:
    return f"{ESC}]8;;{target}{ST}{text}{ESC}]8;;{ST}"


LABEL = (
    f"{ESC}[1;31mbold red{ESC}[0m {ESC}[38;5;208morange{ESC}[39m "
    f"{ESC}[48;2;0;0;128;3mnavy italic{ESC}[0m {ESC}[7minverse{ESC}[27m "
    f"{ESC}]0;a title{ST}{ESC}[2J{osc8('https://example.com/build?id=1', 'the build')} "
    f"{osc8('javascript:alert(document.domain)', 'not a link')}"
)
SHOWN = "bold red orange navy italic inverse the build not a link"


@pytest.mark.abuse
def test_a_real_tasks_colours_and_links_render(worker_factory, live_server_url, browser_page):
    from tests.tasks import print_numbered

    worker_factory()
    page = browser_page
    log_in(page, live_server_url, reverse("admin:index"))
    task_id = outside_the_browser_loop(lambda: print_numbered.delay(LABEL, 1).id)
    outside_the_browser_loop(wait_for_log, task_id)
    page.goto(live_server_url + reverse("tasklog:task_log", args=[task_id]))
    expect(page.locator("[data-field=finished]")).to_have_text("Finished: SUCCESS")

    message = page.locator(".tasklog-stream-stdout .tasklog-message")
    expect(message).to_have_text(f"{SHOWN} 1 out")
    red = message.locator("span.tasklog-bold.tasklog-fg-1")
    expect(red).to_have_text("bold red")
    expect(red).to_have_css("color", "rgb(241, 76, 76)")
    expect(message.get_by_text("orange")).to_have_css("color", "rgb(255, 135, 0)")
    navy = message.get_by_text("navy italic")
    expect(navy).to_have_css("background-color", "rgb(0, 0, 128)")
    expect(navy).to_have_css("font-style", "italic")
    expect(message.locator(".tasklog-fg-inverse.tasklog-bg-inverse")).to_have_text("inverse")

    link = message.locator("a")
    expect(link).to_have_count(1)
    expect(link).to_have_text("the build")
    expect(link).to_have_attribute("href", "https://example.com/build?id=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.title() != "a title" and "a title" not in message.inner_text()
    assert page.dialogs == []
    screenshot(page, "tasklog-ansi.png")


def test_the_page_shows_its_lines_when_the_renderer_does_not_load(live_server_url, browser_page):
    """ansi.js answering 404 leaves the lines the server rendered, escapes stripped."""
    page = browser_page
    outside_the_browser_loop(make_log, messages=["first", XSS, f"{ESC}[1;31mbold red{ESC}[0m"])
    page.route("**/ansi.js", lambda route: route.fulfill(status=404, body="Not Found"))
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    messages = page.locator(".tasklog-line .tasklog-message")
    expect(messages).to_have_text(["first", XSS, "bold red"])
    assert page.locator(".tasklog-lines script").count() == 0
    assert page.dialogs == []
