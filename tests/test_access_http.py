"""The access policy, share links, API tokens and remote follow through real HTTP (uvicorn)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.contrib import admin
from django.core import signing
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path, reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from tasklog import shares, tokens
from tasklog.models import AccessToken, TaskLog
from tests.harness import wait_for_task_result
from tests.live_server import LiveServer
from tests.logs import TASK_ID, make_log, make_result, make_user

pytestmark = [pytest.mark.integration]


def launch_view(request):
    """A site's own page that starts a task for whoever is signed in."""
    from tests.tasks import print_numbered

    return HttpResponse(print_numbered.delay("mine", 2).id)


urlpatterns = [
    path("launch/", csrf_exempt(launch_view), name="launch"),
    path("tasklog/", include("tasklog.urls")),
    path("admin/", admin.site.urls),
]

PAGE = "tasklog:task_log"
ENDPOINTS = ["tasklog:task_log_events", "tasklog:task_log_lines", "tasklog:task_log_download"]
ALL_VIEWS = [PAGE, *ENDPOINTS]
OTHER_TASK = "someone-elses-task"
FOLLOW_SCRIPT = Path(sys.executable).parent / "tasklog-follow"


@pytest.fixture
def site(transactional_db):
    server = LiveServer()
    server.start()
    yield server
    server.stop(abruptly=True)


@pytest.fixture
def logs():
    """A finished task launched by ``customer``, and another user's task."""
    customer = make_user("customer", staff=False, can_read_logs=False)
    make_result(status="SUCCESS")
    make_log(
        messages=["customer line"],
        task_name="reports.export",
        launched_by_user_id=str(customer.pk),
        finished=timezone.now(),
    )
    make_result(OTHER_TASK, status="SUCCESS")
    make_log(OTHER_TASK, messages=["secret line"], launched_by_user_id="0", finished=timezone.now())
    return customer


def session_of(user) -> dict:
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def get(site, name, task_id=TASK_ID, **kwargs) -> httpx.Response:
    return httpx.get(site.url + reverse(name, args=[task_id]), timeout=10, **kwargs)


def reads(response: httpx.Response, line: str) -> bool:
    return response.status_code == 200 and line in response.text


class TestPolicy:
    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_the_launcher_reads_their_task_and_nothing_else(self, site, settings, logs, name):
        settings.CELERY_TASKLOG_ACCESS = "tasklog.access.launcher_or_staff"
        cookies = session_of(logs)
        assert reads(get(site, name, cookies=cookies), "customer line")
        other = get(site, name, OTHER_TASK, cookies=cookies)
        unknown = get(site, name, "no-such-task", cookies=cookies)
        assert other.status_code == unknown.status_code == 403
        assert other.text == unknown.text and "secret line" not in other.text

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_the_default_policy_refuses_the_launcher(self, site, logs, name):
        assert get(site, name, cookies=session_of(logs)).status_code == 403

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_staff_readers_read_every_task_and_get_404_for_unknown(self, site, logs, name):
        cookies = session_of(make_user("staff"))
        assert reads(get(site, name, OTHER_TASK, cookies=cookies), "secret line")
        assert get(site, name, "no-such-task", cookies=cookies).status_code == 404


class TestShareLinks:
    @pytest.fixture
    def token(self, logs):
        return shares.share_token(TaskLog.objects.get(task_id=TASK_ID))

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_valid_link_opens_every_view_without_login(self, site, token, name):
        assert reads(get(site, name, params={"share": token}), "customer line")

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_link_of_another_task_is_403(self, site, token, name):
        response = get(site, name, OTHER_TASK, params={"share": token})
        assert response.status_code == 403 and "secret line" not in response.text

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_altered_link_is_403(self, site, token, name):
        altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert get(site, name, params={"share": altered}).status_code == 403

    def test_expired_link_is_403(self, site, logs, monkeypatch):
        log = TaskLog.objects.get(task_id=TASK_ID)
        earlier = signing.time.time() - 3 * 3600
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(signing.time, "time", lambda: earlier)
            token = shares.share_token(log, timedelta(hours=2))
        for name in ALL_VIEWS:
            assert get(site, name, params={"share": token}).status_code == 403

    def test_the_shared_page_follows_over_its_own_endpoints(self, site, token):
        page = get(site, PAGE, params={"share": token})
        assert reads(page, "customer line")
        assert "Copy share link" not in page.text
        events_url = page.text.split('"events_url": "')[1].split('"')[0]
        events = httpx.get(site.url + events_url.replace("\\u0026", "&"), timeout=10)
        assert events.status_code == 200 and "customer line" in events.text


class TestTokens:
    @pytest.fixture
    def key(self, logs):
        return tokens.create_token(make_user("robot"), "ci")[1]

    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_valid_token_reads_the_endpoints(self, site, key, name):
        assert reads(get(site, name, headers={"Authorization": f"Bearer {key}"}), "customer line")

    def test_token_on_the_html_page_is_refused(self, site, key):
        response = get(site, PAGE, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401 and "customer line" not in response.text

    @pytest.mark.parametrize("change", ["expires", "revoked"])
    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_expired_or_revoked_token_is_401(self, site, key, change, name):
        AccessToken.objects.update(**{change: timezone.now() - timedelta(seconds=1)})
        response = get(site, name, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401 and "customer line" not in response.text

    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_token_out_of_scope_is_403(self, site, logs, name):
        _token, key = tokens.create_token(make_user("scoped"), "x", task_name="billing.*")
        response = get(site, name, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403 and "customer line" not in response.text


class Follower:
    """``tasklog-follow`` in a subprocess without Django settings; its stdout read as it comes."""

    def __init__(self, url: str, task_id: str, key: str):
        env = {name: value for name, value in os.environ.items() if "DJANGO" not in name}
        env["TASKLOG_TOKEN"] = key
        self.process = subprocess.Popen(
            [str(FOLLOW_SCRIPT), "--url", url + "/tasklog/", "--timeout", "90", task_id],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_lines(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            assert time.monotonic() < deadline, f"only {self.lines} after {timeout} s"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str]:
        status = self.process.wait(120)
        self.reader.join(10)
        return status, self.process.stderr.read()


def expected_lines(label: str, count: int) -> list[str]:
    kinds = ["{} {} out", "WARNING: tests.tasks: {} {} log", "{} {} err"]
    return [kinds[(n - 1) % 3].format(label, n) for n in range(1, count + 1)]


def test_remote_follow_survives_a_server_restart_with_every_line_once(
    transactional_db, worker_factory
):
    from tests.tasks import print_numbered

    site = LiveServer()
    site.start()
    worker_factory(pool="prefork", concurrency=2)
    key = tokens.create_token(make_user("robot"), "laptop")[1]
    task_id = print_numbered.delay("remote", 40, 0.3).id  # outlasts even a slow server stop
    follower = Follower(site.url, task_id, key)
    try:
        follower.wait_for_lines(5)
        site.stop(abruptly=True)  # mid-task: the stream is cut, the site is down for a while
        time.sleep(1.5)
        during_outage = len(follower.lines)
        site.start()
        status, stderr = follower.finish()
    finally:
        site.stop(abruptly=True)
    wait_for_task_result(task_id)
    assert during_outage < 40, "the restart happened after the task had ended"
    assert follower.lines == expected_lines("remote", 40), stderr
    assert (status, stderr.splitlines()[-1]) == (0, f"Task {task_id} ended: SUCCESS.")


def test_remote_follow_with_a_revoked_token_exits_3(site, logs):
    token, key = tokens.create_token(make_user("robot"), "laptop")
    tokens.revoke_tokens(AccessToken.objects.filter(pk=token.pk))
    status, stderr = Follower(site.url, TASK_ID, key).finish()
    assert status == 3
    assert "The server refused: 401: The token is unknown, expired or revoked." in stderr


def test_manage_py_follow_url_shows_remote_escapes_as_text(site, logs, capsys):
    from io import StringIO

    from django.core.management import call_command

    make_log("hostile", messages=["\x1b]52;c;cm0gLXJmIH4=\x07copied", "\u202eevil"])
    make_result("hostile", status="SUCCESS")
    TaskLog.objects.filter(task_id="hostile").update(finished=timezone.now())
    key = tokens.create_token(make_user("robot"), "laptop")[1]
    out, err = StringIO(), StringIO()
    call_command(
        "tasklog_follow", "hostile", "--url", site.url + "/tasklog/", "--token", key,
        stdout=out, stderr=err,
    )  # fmt: skip
    assert out.getvalue().splitlines() == ["\\x1b]52;c;cm0gLXJmIH4=\\x07copied", "\\u202eevil"]
    assert err.getvalue().strip() == "Task hostile ended: SUCCESS."


def run_follow_script(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if "DJANGO" not in name}
    env.pop("TASKLOG_TOKEN", None)
    if token:
        env["TASKLOG_TOKEN"] = token
    return subprocess.run(
        [str(FOLLOW_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_remote_follow_waits_for_an_unknown_task_then_times_out(site, logs):
    key = tokens.create_token(make_user("robot"), "laptop")[1]
    done = run_follow_script("--url", site.url + "/tasklog", "--timeout", "1", "later", token=key)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "Waiting for task later to start...",
        "Timed out after 1 s; task later is PENDING.",
    ]


@pytest.mark.abuse
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--url", "ftp://x/tasklog/", "t"], "--url must start with http:// or https://"),
        (["--url", "http://x/", "--timeout", "nan", "t"], "must be a number of seconds"),
        (["--url", "http://x/", "--timeout", "-1", "t"], "must be a number of seconds"),
        (["--url", "http://x/", "--tail", "9" * 50, "t"], "must be a whole number"),
        (["--url", "http://x/", "--tail", "٣", "t"], "must be a whole number"),
    ],
)
def test_remote_follow_refuses_bad_options(args, error):
    done = run_follow_script(*args, token="tasklog_x")
    assert done.returncode == 2 and error in done.stderr


@pytest.mark.abuse
def test_remote_follow_needs_a_token():
    done = run_follow_script("--url", "http://127.0.0.1:9/tasklog/", "t")
    assert done.returncode == 2 and "an API token is needed" in done.stderr


@pytest.mark.abuse
def test_remote_follow_of_an_unreachable_site_times_out_cleanly():
    done = run_follow_script(
        "--url", "http://127.0.0.1:9/tasklog/", "--timeout", "1", "ünï/cödé?#", token="tasklog_x"
    )
    assert done.returncode == 2
    lost, timed_out = done.stderr.splitlines()
    assert lost.startswith("Lost the connection (") and lost.endswith("); reconnecting...")
    assert timed_out == "Timed out after 1 s; task ünï/cödé?# is PENDING."


@pytest.mark.urls(__name__)
def test_a_customer_reads_the_log_of_the_task_they_launched_and_no_other(worker_factory, settings):
    settings.CELERY_TASKLOG_ACCESS = "tasklog.access.launcher_or_staff"
    worker = worker_factory()
    customer, other = Client(), Client()
    customer.force_login(make_user("customer", staff=False, can_read_logs=False))
    other.force_login(make_user("other", staff=False, can_read_logs=False))
    task_id = customer.post(reverse("launch")).content.decode()
    wait_for_task_result(task_id, worker=worker)
    lines_url = reverse("tasklog:task_log_lines", args=[task_id])

    mine = customer.get(lines_url)
    assert [line["message"] for line in mine.json()["lines"]][:1] == ["mine 1 out"]
    assert customer.get(reverse("tasklog:task_log", args=[task_id])).status_code == 200
    refused, unknown = other.get(lines_url), other.get(lines_url.replace(task_id, "x" + task_id))
    assert refused.status_code == unknown.status_code == 403
    assert refused.json() == unknown.json()


@pytest.mark.abuse
def test_first_links_made_at_once_all_work(transactional_db):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    make_log(messages=["x"])

    def first_link(_n: int) -> str:
        try:
            return shares.share_token(TaskLog.objects.get(task_id=TASK_ID))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        links = list(pool.map(first_link, range(16)))
    log = TaskLog.objects.get(task_id=TASK_ID)
    assert log.share_secret and all(shares.admits(link, log) for link in links)
