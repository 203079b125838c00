"""An archived log reads in the browser as it did from the database (issue 15)."""

# ruff: noqa: F811 (the fixtures imported from test_browser are parameters here)
from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tasklog import archive
from tasklog.models import Stream
from tests.test_archive import archiving, finished_log
from tests.test_browser import (  # noqa: F401 (fixtures)
    XSS,
    browser_page,
    live_server_url,
    log_in,
    outside_the_browser_loop,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def archived_log(task_id: str) -> None:
    rows = [(Stream.STDOUT, f"line {n}") for n in range(1, 1501)]
    rows[700] = (Stream.STDOUT, XSS)
    finished_log(task_id, rows=rows)
    assert archive.archive_due().logs == 1


def test_an_archived_log_scrolls_jumps_and_searches_from_its_archive(
    live_server_url, browser_page, tmp_path
):
    storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "archive")},
    }
    page = browser_page
    with archiving(storage):
        outside_the_browser_loop(archived_log, "archived-in-browser")
        path = reverse("tasklog:task_log", args=["archived-in-browser"])
        log_in(page, live_server_url, path)
        expect(page.locator("[data-field=archived]")).to_contain_text("Archived on")
        lines = page.locator(".tasklog-line")
        expect(lines.last).to_have_attribute("data-seq", "1500")

        page.goto(f"{live_server_url}{path}#L701")
        target = page.locator('.tasklog-line[data-seq="701"]')
        expect(target.locator(".tasklog-message")).to_have_text(XSS)
        assert page.dialogs == []

        page.goto(f"{live_server_url}{path}?q=line+1234")
        expect(page.locator('.tasklog-line[data-seq="1234"]')).to_be_visible()
