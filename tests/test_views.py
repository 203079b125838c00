"""The task log page and its JSON and download endpoints, through the Django test client."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone

from tasklog import views
from tests.logs import TASK_ID, add_lines, make_log, make_result, make_user

pytestmark = pytest.mark.django_db

PAGE = "tasklog:task_log"
ENDPOINTS = ["tasklog:task_log_events", "tasklog:task_log_lines", "tasklog:task_log_download"]
ALL_VIEWS = [PAGE, *ENDPOINTS]
XSS = "<script>alert(1)</script>"


@pytest.fixture
def finished_log():
    make_result(status="SUCCESS", result=8)
    return make_log(messages=["first", XSS, "\x1b[31mred\x1b[0m"], finished=timezone.now())


def url(name: str, task_id: str = TASK_ID) -> str:
    return reverse(name, args=[task_id])


def page_data(response) -> dict:
    """The JSON the page hands to tasklog.js."""
    html = response.content.decode()
    start = html.index('<script type="application/json">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


class TestAccess:
    def test_anonymous_is_sent_to_the_admin_login_from_the_page(self, client, finished_log):
        response = client.get(url(PAGE))
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next=/tasklog/{TASK_ID}/"

    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_anonymous_gets_403_from_endpoints(self, client, finished_log, name):
        response = client.get(url(name))
        assert response.status_code == 403
        assert response.json() == {
            "error": "You may not read this task's log, or there is no such task."
        }

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_staff_without_the_permission_gets_403(self, client, finished_log, name):
        client.force_login(make_user("staff", can_read_logs=False))
        assert client.get(url(name)).status_code == 403

    def test_non_staff_user_with_the_permission_is_refused(self, client, finished_log):
        client.force_login(make_user("outsider", staff=False))
        assert client.get(url(PAGE)).status_code == 403
        assert client.get(url("tasklog:task_log_lines")).status_code == 403

    def test_inactive_staff_is_refused(self, client, finished_log):
        user = make_user("gone")
        client.force_login(user)
        user.is_active = False
        user.save()
        assert client.get(url("tasklog:task_log_lines")).status_code == 403

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_reader_with_the_permission_is_admitted(self, reader, finished_log, name):
        assert reader.get(url(name)).status_code == 200

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_post_is_not_allowed(self, reader, finished_log, name):
        assert reader.post(url(name)).status_code == 405


class TestTaskIds:
    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_unknown_task_is_404(self, reader, name):
        assert reader.get(url(name, "no-such-task")).status_code == 404

    @pytest.mark.parametrize(
        "path",
        [
            "/tasklog/%3Cscript%3E/",
            "/tasklog/has%20space/lines/",
            "/tasklog/-leading-dash/",
            "/tasklog/a'quote/download/",
            f"/tasklog/{'a' * 256}/",
            "/tasklog/a/b/events/",
        ],
    )
    def test_malformed_task_id_is_404(self, reader, path):
        assert reader.get(path).status_code == 404

    def test_task_with_a_result_but_no_log_shows_an_empty_page(self, reader):
        make_result(status="PENDING")
        response = reader.get(url(PAGE))
        assert response.status_code == 200
        assert "No lines yet: the task may not have started." in response.content.decode()
        assert page_data(response)["lines"] == []


class TestPage:
    def test_shows_the_task_header(self, reader):
        make_result(status="PROGRESS", result={"current": 3, "total": 8})
        make_log(messages=["hello"], worker="celery@box", launched_by="alice", attempts=2)
        html = reader.get(url(PAGE)).content.decode()
        assert "example.tasks.timed_print_task" in html
        assert 'data-state="PROGRESS"' in html
        assert 'value="37.5"' in html
        assert "celery@box" in html
        assert "alice" in html

    def test_log_text_stays_text(self, reader, finished_log):
        html = reader.get(url(PAGE)).content.decode()
        assert XSS not in html
        assert "alert(1)" in html
        assert [line["message"] for line in page_data(reader.get(url(PAGE)))["lines"]] == [
            "first",
            XSS,
            "\x1b[31mred\x1b[0m",
        ]

    def test_finished_task_says_so(self, reader, finished_log):
        response = reader.get(url(PAGE))
        html = response.content.decode()
        assert "Finished:" in html
        assert 'data-field="finished" hidden' not in html
        assert page_data(response)["task"]["state"] == "SUCCESS"

    def test_running_task_hides_the_finished_banner(self, reader):
        make_log(messages=["working"])
        assert 'data-field="finished" hidden' in reader.get(url(PAGE)).content.decode()

    def test_truncated_log_shows_a_banner(self, reader):
        make_log(messages=["head"], truncated=True, dropped=1234)
        html = reader.get(url(PAGE)).content.decode()
        assert "This log is truncated: 1234 lines were not stored." in html

    def test_renders_only_the_tail_and_offers_earlier_lines(self, reader):
        make_log(messages=[f"line {n}" for n in range(1, views.PAGE_SIZE + 101)])
        data = page_data(reader.get(url(PAGE)))
        assert len(data["lines"]) == views.PAGE_SIZE
        assert data["lines"][0]["seq"] == 101
        assert data["lines"][-1]["seq"] == views.PAGE_SIZE + 100
        assert data["has_earlier"] is True

    def test_short_log_has_nothing_earlier(self, reader, finished_log):
        assert page_data(reader.get(url(PAGE)))["has_earlier"] is False

    def test_page_reads_the_tail_with_a_bounded_number_of_queries(
        self, reader, finished_log, django_assert_max_num_queries
    ):
        # 8, the access policy's look at the log, and drawing the task's share secret for the
        # "Copy share link" button (once per task: a conditional UPDATE and its read-back)
        with django_assert_max_num_queries(10):
            reader.get(url(PAGE))
        with django_assert_max_num_queries(9):
            reader.get(url(PAGE))

    def test_links_to_the_download_and_ships_the_endpoint_urls(self, reader, finished_log):
        response = reader.get(url(PAGE))
        assert url("tasklog:task_log_download") in response.content.decode()
        data = page_data(response)
        assert data["events_url"] == url("tasklog:task_log_events")
        assert data["lines_url"] == url("tasklog:task_log_lines")


class TestLinesEndpoint:
    @pytest.fixture
    def log(self):
        return make_log(messages=[f"line {n}" for n in range(1, 11)])

    def get(self, reader, **params):
        return reader.get(url("tasklog:task_log_lines"), params)

    def test_pages_forwards_with_after_and_limit(self, reader, log):
        body = self.get(reader, after=3, limit=4).json()
        assert [line["seq"] for line in body["lines"]] == [4, 5, 6, 7]
        assert body["next_after"] == 7
        assert body["task"]["task_id"] == TASK_ID
        assert body["task"]["lines"] == 10

    def test_line_shape(self, reader, log):
        line = self.get(reader, limit=1).json()["lines"][0]
        assert set(line) == {
            *("seq", "timestamp", "stream", "level", "logger", "extra", "message"),
            *("kind", "depth", "group", "error"),
        }
        assert line["timestamp"].endswith("+00:00")

    def test_caught_up_keeps_next_after(self, reader, log):
        body = self.get(reader, after=10).json()
        assert body["lines"] == []
        assert body["next_after"] == 10

    def test_pages_backwards_with_before(self, reader, log):
        body = self.get(reader, before=8, limit=3).json()
        assert [line["seq"] for line in body["lines"]] == [5, 6, 7]
        assert body["next_before"] == 5
        last = self.get(reader, before=3, limit=3).json()
        assert [line["seq"] for line in last["lines"]] == [1, 2]
        assert last["next_before"] is None

    def test_new_lines_appear_after_next_after(self, reader, log):
        next_after = self.get(reader).json()["next_after"]
        add_lines(TASK_ID, ["eleven"])
        assert [line["message"] for line in self.get(reader, after=next_after).json()["lines"]] == [
            "eleven"
        ]

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"after": "abc"}, "after must be a whole number from 0 to 2147483647, got 'abc'."),
            ({"after": "-1"}, "after must be a whole number from 0 to 2147483647, got '-1'."),
            ({"after": "1.5"}, "after must be a whole number from 0 to 2147483647, got '1.5'."),
            (
                {"after": "99999999999"},
                "after must be a whole number from 0 to 2147483647, got '99999999999'.",
            ),
            ({"before": "x"}, "before must be a whole number from 0 to 2147483647, got 'x'."),
            ({"limit": "5001"}, "limit must be a whole number from 0 to 5000, got '5001'."),
            ({"limit": "0"}, "limit must be at least 1."),
        ],
    )
    def test_bad_parameters_are_a_400_with_a_reason(self, reader, log, params, message):
        response = self.get(reader, **params)
        assert response.status_code == 400
        assert response.json() == {"error": message}


class TestDownload:
    def test_streams_the_whole_log_as_text(self, reader, finished_log, monkeypatch):
        monkeypatch.setattr(views, "DOWNLOAD_PAGE_SIZE", 2)
        response = reader.get(url("tasklog:task_log_download"))
        assert response.streaming
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response["Content-Disposition"] == f'attachment; filename="tasklog-{TASK_ID}.txt"'
        text = b"".join(response.streaming_content).decode()
        assert [line.split(" ", 2)[1:] for line in text.splitlines()] == [
            ["stdout", "first"],
            ["stdout", XSS],
            ["stdout", "red"],
        ]

    def test_log_lines_carry_their_level(self, reader):
        make_log()
        from tasklog.models import Level, Stream, TaskLogLine

        TaskLogLine.objects.filter(task_id=TASK_ID).delete()
        add_lines(TASK_ID, ["careful"], stream=Stream.LOG)
        TaskLogLine.objects.filter(task_id=TASK_ID).update(level=Level.WARNING)
        text = b"".join(reader.get(url("tasklog:task_log_download")).streaming_content).decode()
        assert text.split(" ", 1)[1] == "log:WARNING careful\n"


@pytest.mark.django_db(transaction=True)
def test_download_streams_asynchronously_under_asgi(monkeypatch):
    monkeypatch.setattr(views, "DOWNLOAD_PAGE_SIZE", 2)
    make_log(messages=["one", "two", "three"])

    async def download():
        client = AsyncClient()
        await client.aforce_login(await sync_to_async(make_user)("reader"))
        response = await client.get(url("tasklog:task_log_download"))
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(download)()
    assert response.is_async
    assert [line.rsplit(" ", 1)[1] for line in b"".join(chunks).decode().splitlines()] == [
        "one",
        "two",
        "three",
    ]
