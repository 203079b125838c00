"""The diagnostic page: the checks of ``tasklog_diagnose``, the round trip only on POST."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import resolve, reverse

from tasklog import views
from tasklog.diagnostics import CheckResult
from tests.logs import make_user

pytestmark = pytest.mark.django_db

URL = reverse("tasklog:diagnostic")


@pytest.fixture
def probes(monkeypatch):
    """Replace the checks by canned results; the list records each call's ``probe``."""
    calls: list[bool] = []

    def run_diagnostics(*, probe=False, timeout=10.0, app=None):
        calls.append(probe)
        results = [
            CheckResult("database", "PASS", "'default' is reachable."),
            CheckResult("workers", "FAIL", "No worker answered.", "Start a <worker>."),
        ]
        return [*results, CheckResult("round trip", "PASS", "Lines stored.")] if probe else results

    monkeypatch.setattr(views, "run_diagnostics", run_diagnostics)
    return calls


def test_is_not_read_as_a_task_id():
    assert resolve(URL).view_name == "tasklog:diagnostic"


def test_anonymous_is_sent_to_the_login(client, probes):
    assert client.get(URL).status_code == 302
    assert probes == []


def test_staff_without_the_permission_gets_403(client, probes):
    client.force_login(make_user("staff", can_read_logs=False))
    assert client.get(URL).status_code == 403
    assert probes == []


def test_get_shows_the_checks_without_the_round_trip(client, probes):
    client.force_login(make_user("reader"))
    response = client.get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert probes == [False]
    assert [check.name for check in response.context["checks"]] == ["database", "workers"]
    assert "Some checks failed" in html
    assert "Start a &lt;worker&gt;." in html
    assert 'method="post"' in html


def test_post_runs_the_round_trip(client, probes):
    client.force_login(make_user("reader"))
    response = client.post(URL)
    assert probes == [True]
    assert response.context["checks"][-1].name == "round trip"


def test_post_needs_the_csrf_token(probes):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("reader"))
    assert client.post(URL).status_code == 403
    token = client.get(URL).context["csrf_token"]
    assert client.post(URL, {"csrfmiddlewaretoken": token}).status_code == 200
    assert probes == [False, True]
