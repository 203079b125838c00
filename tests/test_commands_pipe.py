"""A reader that stops reading (``tasklog_show ID | head``) ends the command quietly.

Found by trying the app as a new user: the commands ended with a ``BrokenPipeError`` traceback.
Each command runs as a real process whose standard output is a pipe that the test closes after
the first line, as ``head -1`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection
from django_celery_results.models import TaskResult

from tasklog import tokens
from tasklog.portable import EXIT_READER_GONE
from tests.harness import ROOT
from tests.live_server import LiveServer
from tests.logs import make_user
from tests.rows import make_log, many_lines

pytestmark = [pytest.mark.integration]

TASK_ID = "long-log"
LINES = 20_000  # ~200 kB: more than a pipe holds, so the command is still writing


@pytest.fixture
def long_log(transactional_db):
    make_log(TASK_ID)
    many_lines(TASK_ID, LINES)
    TaskResult.objects.create(task_id=TASK_ID, status="SUCCESS")


def read_one_line_and_leave(command: list[str], env: dict[str, str]) -> tuple[str, int, str]:
    """The first line, then the pipe closed: ``(first line, exit status, standard error)``."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first = process.stdout.readline()
    process.stdout.close()
    status = process.wait(60)
    return first, status, process.stderr.read()


def manage_py_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TASKLOG_WORKER_DATABASE_NAME": connection.settings_dict["NAME"],
    }


@pytest.mark.parametrize(
    "arguments",
    [
        ["tasklog_show", TASK_ID],
        ["tasklog_show", "--format", "plain", TASK_ID],
        ["tasklog_follow", TASK_ID],
    ],
)
def test_a_command_piped_into_head_ends_without_a_traceback(long_log, arguments):
    command = [sys.executable, "-m", "django", *arguments]
    first, status, stderr = read_one_line_and_leave(command, manage_py_env())
    assert first.strip()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert status == EXIT_READER_GONE == 141


def test_remote_follow_piped_into_head_ends_without_a_traceback(long_log):
    site = LiveServer()
    site.start()
    try:
        env = {name: value for name, value in os.environ.items() if "DJANGO" not in name}
        env["TASKLOG_TOKEN"] = tokens.create_token(make_user("robot"), "laptop")[1]
        script = os.path.join(os.path.dirname(sys.executable), "tasklog-follow")
        command = [script, "--url", site.url + "/tasklog/", TASK_ID]
        first, status, stderr = read_one_line_and_leave(command, env)
    finally:
        site.stop(abruptly=True)
    assert first == "line 1\n"
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert status == EXIT_READER_GONE
