"""Share links in headless Chromium: a reader copies one, a visitor without a login follows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.logs import TASK_ID, add_lines, make_log
from tests.test_browser import (  # the fixtures of the browser tests, shared
    browser_page,  # noqa: F401
    live_server_url,  # noqa: F401
    log_in,
    outside_the_browser_loop,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_a_copied_share_link_follows_the_log_live_without_a_login(
    live_server_url,  # noqa: F811 (the fixture imported above)
    browser_page,  # noqa: F811
):
    page = browser_page
    outside_the_browser_loop(make_log, messages=["before sharing"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, live_server_url, reverse("tasklog:task_log", args=[TASK_ID]))
    page.locator(".tasklog-share").click()
    expect(page.locator(".tasklog-share-copied")).to_be_visible()
    link = page.evaluate("navigator.clipboard.readText()")
    assert link.startswith(f"{live_server_url}/tasklog/{TASK_ID}/?share=")

    visitor = page.context.browser.new_context()  # no session cookie
    shared = visitor.new_page()
    shared.goto(link)
    lines = shared.locator(".tasklog-line .tasklog-message")
    expect(lines).to_have_text(["before sharing"])
    expect(shared.locator("[data-field=live]")).to_be_visible()
    expect(shared.locator(".tasklog-share")).to_have_count(0)
    outside_the_browser_loop(add_lines, TASK_ID, ["after sharing"])
    expect(lines).to_have_text(["before sharing", "after sharing"])
    with shared.expect_download() as download:
        shared.locator(".tasklog-download").click()
    assert "after sharing" in Path(download.value.path()).read_text(encoding="utf-8")

    shared.goto(link[:-3] + "AAA")
    assert "This share link is invalid or has expired." in shared.content()
    visitor.close()
