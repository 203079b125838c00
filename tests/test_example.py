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
def test_launch_page_redirects_to_the_task_page_once_a_worker_took_the_task(admin_client, sent):
    TaskLog.objects.create(task_id=TASK_ID, started=timezone.now(), last_seen=timezone.now())

    response = admin_client.post("/", {"count": "3", "interval": "0.5", "fail": "on"})

    assert sent == [{"count": 3, "interval": 0.5, "fail": True}]
    assert response.status_code == 302
    assert response.url == f"/tasklog/{TASK_ID}/"


@pytest.mark.usefixtures("example_project")
def test_launch_page_says_so_when_no_worker_takes_the_task(admin_client, sent, monkeypatch):
    monkeypatch.setattr(views, "LAUNCH_WAIT", 0.2)

    response = admin_client.post("/", {"count": "3", "interval": "0.5"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "No worker has taken it yet" in page
    assert f'href="/tasklog/{TASK_ID}/"' in page


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
