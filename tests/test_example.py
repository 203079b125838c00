"""The example project's launch page and command, with the task's ``delay`` replaced."""

from __future__ import annotations

from io import StringIO
from types import ModuleType, SimpleNamespace

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.http import HttpResponse
from django.urls import include, path

from example.management.commands import launch_demo_task
from example.views import launch

TASK_ID = "0d5f7c2e-launched"


def urlconf(*patterns) -> ModuleType:
    """The example project's URLconf with ``patterns`` added."""
    module = ModuleType("urls")
    module.urlpatterns = [path("", launch, name="launch"), path("admin/", admin.site.urls)]
    module.urlpatterns += patterns
    return module


WITHOUT_TASKLOG = urlconf()
# With a stand-in for tasklog's task page.
WITH_TASKLOG = urlconf(
    path("tasklog/", include(([path("<task_id>/", HttpResponse, name="task_log")], "tasklog")))
)


@pytest.fixture
def example_project(settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "example"]
    settings.ROOT_URLCONF = WITHOUT_TASKLOG


@pytest.fixture
def sent(monkeypatch):
    """The keyword arguments of every ``timed_print_task.delay()`` call."""
    calls = []

    def delay(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(id=TASK_ID)

    task = SimpleNamespace(delay=delay)
    monkeypatch.setattr("example.views.timed_print_task", task)
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
def test_launch_page_shows_the_task_id_when_tasklog_urls_are_not_included(admin_client, sent):
    response = admin_client.post("/", {"count": "3", "interval": "0.5", "fail": "on"})

    assert sent == [{"count": 3, "interval": 0.5, "fail": True}]
    assert response.status_code == 200
    assert TASK_ID in response.content.decode()


@pytest.mark.usefixtures("example_project")
def test_launch_page_redirects_to_the_task_page_when_tasklog_urls_are_included(
    admin_client, sent, settings
):
    settings.ROOT_URLCONF = WITH_TASKLOG

    response = admin_client.post("/", {"count": "3", "interval": "0.5"})

    assert response.status_code == 302
    assert response.url == f"/tasklog/{TASK_ID}/"


@pytest.mark.usefixtures("example_project")
def test_launch_page_refuses_a_bad_count(admin_client, sent):
    response = admin_client.post("/", {"count": "0", "interval": "1"})

    assert sent == []
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "count": ["Ensure this value is greater than or equal to 1."]
    }
