"""CELERY_TASKLOG_DATABASE: the log tables live in a database of their own."""

import json

import pytest
from celery import states
from django_celery_results.models import TaskResult

from tasklog.capture import capture_output
from tasklog.models import TaskLog, TaskLogLine

pytestmark = pytest.mark.django_db(databases=["default", "logs"])


@pytest.fixture
def log_database(settings):
    settings.CELERY_TASKLOG_DATABASE = "logs"


@pytest.mark.usefixtures("log_database")
def test_capture_writes_only_to_the_log_database():
    with capture_output("kept-apart", synchronous=True):
        print("stored in the log database")

    assert TaskLogLine.objects.using("logs").filter(task_id="kept-apart").count() == 1
    assert TaskLog.objects.using("logs").filter(task_id="kept-apart").exists()
    assert not TaskLogLine.objects.using("default").filter(task_id="kept-apart").exists()
    assert not TaskLog.objects.using("default").filter(task_id="kept-apart").exists()


@pytest.mark.usefixtures("log_database")
def test_the_managers_read_the_log_database():
    with capture_output("read-back", synchronous=True):
        print("one line")

    assert TaskLog.objects.get(task_id="read-back").lines == 1
    assert [line.message for line in TaskLogLine.objects.for_task("read-back")] == ["one line"]


@pytest.mark.usefixtures("log_database")
def test_the_lines_endpoint_joins_the_state_from_the_main_database(admin_client):
    TaskResult.objects.create(task_id="joined", status=states.SUCCESS, task_name="tests.joined")
    with capture_output("joined", task_name="tests.joined", synchronous=True):
        print("the line")

    response = admin_client.get("/tasklog/joined/lines/")

    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["task"]["state"] == "SUCCESS"
    assert [line["message"] for line in body["lines"]] == ["the line"]
