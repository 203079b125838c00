"""The example project's launch page and command, with the task's ``delay`` replaced."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.utils import timezone

from example import views
from example.management.commands import launch_demo_task
from tasklog.models import TaskLog

TASK_ID = "0d5f7c2e-launched"


@pytest.fixture
def example_project(settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "example"]
    settings.ROOT_URLCONF = "example.urls"


@pytest.fixture
def sent(monkeypatch):
    """The keyword arguments of every ``timed_print_task.delay()`` call."""
    calls = []

    def delay(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(id=TASK_ID)

    task = SimpleNamespace(delay=delay)
    monkeypatch.setattr(views, "timed_print_task", task)
    monkeypatch.setattr(launch_demo_task, "timed_print_task", task)
    return calls


def test_launch_demo_task_prints_only_the_task_id(sent):
    stdout = StringIO()

    call_command(launch_demo_task.Command(), "--count=3", "--interval=0.5", stdout=stdout)

    assert stdout.getvalue() == f"{TASK_ID}\n"
    assert sent == [{"count": 3, "interval": 0.5, "fail": False}]


@pytest.mark.usefixtures("example_project")
def test_launch_page_sends_anonymous_users_to_the_login(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


@pytest.mark.usefixtures("example_project")
def test_launch_page_shows_the_queued_task_inline_at_once(admin_client, sent):
    now = timezone.now()
    TaskLog.objects.create(task_id=TASK_ID, queued=now, queue="celery", last_seen=now)

    response = admin_client.post("/", {"count": "3", "interval": "0.5", "fail": "on"}, follow=True)

    assert sent == [{"count": 3, "interval": 0.5, "fail": True}]
    assert response.redirect_chain == [(f"/?task={TASK_ID}", 302)]
    page = response.content.decode()
    assert page.count("data-tasklog ") == 1
    assert 'data-state="QUEUED"' in page
    assert "Waiting in queue" in page


@pytest.mark.usefixtures("example_project")
def test_launch_page_refuses_a_bad_count(admin_client, sent):
    response = admin_client.post("/", {"count": "0", "interval": "1"})

    assert sent == []
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "count": ["Ensure this value is greater than or equal to 1."]
    }


DEBUG_PAGE_PROBE = """
import django
from django.test import Client

django.setup()
response = Client(HTTP_HOST="localhost").get("/no-such-page/")
print(response.status_code, "Django tried these URL patterns" in response.content.decode())
"""


def example_project_answers(**environment) -> str:
    """How the example project, started with ``environment``, answers an unknown URL."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env |= {"DJANGO_SETTINGS_MODULE": "example.settings", **environment}
    env.pop("DATABASE_URL", None)
    probe = subprocess.run(
        [sys.executable, "-c", DEBUG_PAGE_PROBE], env=env, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip()


@pytest.mark.abuse
def test_the_example_project_shows_no_debug_page_by_default():
    assert example_project_answers() == "404 False"
    assert example_project_answers(DJANGO_DEBUG="TRUE; rm -rf /") == "404 False"
    assert example_project_answers(DJANGO_DEBUG="true") == "404 True"  # what make demo sets


@pytest.mark.abuse
@pytest.mark.usefixtures("example_project")
def test_the_launch_page_shows_a_few_logs_whatever_the_query(admin_client):
    hostile = ["<script>alert(1)</script>", "x" * 100_000, "é" * 300, "\x00"] + ["a"] * 500

    response = admin_client.get("/", {"task": hostile})

    assert response.status_code == 200
    page = response.content.decode()
    shown = page.count('class="tasklog"') + page.count('class="tasklog tasklog-refused"')
    assert shown == views.MAX_SHOWN
    assert "<script>alert(1)</script>" not in page
