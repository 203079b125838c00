"""The SSE endpoint: events parsed as a browser would, resume by Last-Event-ID, state and end."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasklog import sse
from tests.logs import TASK_ID, add_lines, close_log, make_log, make_result, make_user

EVENTS_URL = reverse("tasklog:task_log_events", args=[TASK_ID])


def parse_events(text: str) -> list[dict]:
    """Split an event stream into events the way EventSource does (comments kept apart)."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event: dict = {}
        for field_line in block.split("\n"):
            name, _, value = field_line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event["comment"] = value
            elif name == "data":
                event["data"] = json.loads(value)
            else:
                event[name] = value
        events.append(event)
    return events


def seqs(events: list[dict]) -> list[int]:
    return [int(event["id"]) for event in events if event.get("event") == "line"]


def kinds(events: list[dict]) -> list[str]:
    return [event.get("event") or ("retry" if "retry" in event else "comment") for event in events]


@pytest.fixture(autouse=True)
def _polling(settings):
    """These tests change the database behind the stream's back (no NOTIFY): streams poll.
    Pushed streams are tested in tests/test_push*.py."""
    settings.CELERY_TASKLOG_PUSH = False


@pytest.fixture
def reader_client(client):
    client.force_login(make_user("reader"))
    return client


@pytest.mark.django_db
class TestOnePassUnderWSGI:
    """The sync test client is a WSGI request: one pass, then the browser reconnects."""

    def test_sends_lines_with_ids_then_end(self, reader_client):
        make_result(status="SUCCESS", result=3)
        make_log(messages=["one", "<b>two</b>", "three"], finished=timezone.now())
        response = reader_client.get(EVENTS_URL)
        assert response["Content-Type"] == "text/event-stream"
        assert response["Cache-Control"].startswith("no-cache")
        assert response["X-Accel-Buffering"] == "no"
        events = parse_events(response.content.decode())
        assert kinds(events) == ["retry", "line", "line", "line", "end"]
        assert events[0]["retry"] == str(sse.RECONNECT_MS)
        assert seqs(events) == [1, 2, 3]
        assert events[2]["data"]["message"] == "<b>two</b>"
        assert events[-1]["data"]["state"] == "SUCCESS"
        assert events[-1]["data"]["progress"] == 100.0

    def test_resumes_after_last_event_id(self, reader_client):
        make_result(status="SUCCESS")
        make_log(messages=[f"line {n}" for n in range(1, 6)], finished=timezone.now())
        events = parse_events(
            reader_client.get(EVENTS_URL, headers={"last-event-id": "3"}).content.decode()
        )
        assert seqs(events) == [4, 5]

    def test_last_event_id_wins_over_after(self, reader_client):
        make_result(status="SUCCESS")
        make_log(messages=[f"line {n}" for n in range(1, 6)], finished=timezone.now())
        response = reader_client.get(EVENTS_URL, {"after": "1"}, headers={"last-event-id": "4"})
        assert seqs(parse_events(response.content.decode())) == [5]

    def test_resumes_after_query_parameter(self, reader_client):
        make_result(status="SUCCESS")
        make_log(messages=[f"line {n}" for n in range(1, 6)], finished=timezone.now())
        response = reader_client.get(EVENTS_URL, {"after": "2"})
        assert seqs(parse_events(response.content.decode())) == [3, 4, 5]

    def test_running_task_gets_its_state_and_no_end(self, reader_client):
        make_result(status="PROGRESS", result={"current": 1, "total": 4})
        make_log(messages=["working"])
        events = parse_events(reader_client.get(EVENTS_URL).content.decode())
        assert kinds(events) == ["retry", "line", "state"]
        assert events[-1]["data"]["state"] == "PROGRESS"
        assert events[-1]["data"]["progress"] == 25.0

    def test_a_full_batch_waits_for_the_next_pass_before_state(self, reader_client, monkeypatch):
        monkeypatch.setattr(sse, "BATCH_SIZE", 2)
        make_result(status="SUCCESS")
        make_log(messages=["one", "two", "three"], finished=timezone.now())
        first = parse_events(reader_client.get(EVENTS_URL).content.decode())
        assert kinds(first) == ["retry", "line", "line"]
        rest = reader_client.get(EVENTS_URL, headers={"last-event-id": "2"})
        assert kinds(parse_events(rest.content.decode())) == ["retry", "line", "end"]

    @pytest.mark.parametrize("bad", ["abc", "-1", "3.5", "99999999999"])
    def test_bad_last_event_id_is_a_400(self, reader_client, bad):
        make_log(messages=["one"])
        response = reader_client.get(EVENTS_URL, headers={"last-event-id": bad})
        assert response.status_code == 400
        assert "Last-Event-ID must be a whole number" in response.json()["error"]


async def read_stream(response) -> str:
    return "".join([chunk.decode() async for chunk in response.streaming_content])


@pytest.mark.django_db(transaction=True)
class TestFollowUnderASGI:
    """The async client is an ASGI request: the view streams from an async generator."""

    def get(self, **headers):
        async def fetch():
            client = AsyncClient()
            await client.aforce_login(await sync_to_async(make_user)("reader"))
            response = await client.get(EVENTS_URL, headers=headers)
            return response, await read_stream(response)

        return async_to_sync(fetch)()

    def test_streams_lines_then_end_and_closes(self):
        make_result(status="FAILURE")
        make_log(messages=["one", "Traceback (most recent call last):"], finished=timezone.now())
        response, text = self.get()
        assert response.streaming
        assert response["X-Accel-Buffering"] == "no"
        events = parse_events(text)
        assert kinds(events) == ["retry", "line", "line", "end"]
        assert events[-1]["data"]["state"] == "FAILURE"

    def test_resumes_after_last_event_id(self):
        make_result(status="SUCCESS")
        make_log(messages=[f"line {n}" for n in range(1, 8)], finished=timezone.now())
        _response, text = self.get(last_event_id="5")
        assert seqs(parse_events(text)) == [6, 7]

    def test_anonymous_gets_403(self):
        make_log(messages=["secret"])

        async def fetch():
            return await AsyncClient().get(EVENTS_URL)

        assert async_to_sync(fetch)().status_code == 403


def follow(task_id: str = TASK_ID, after: int = 0, *, steps, **options):
    """Run ``sse.follow_task``; ``steps(chunk)`` runs after each chunk, before the next poll."""
    options = {"poll_interval": 0.01, "heartbeat_interval": 3600, **options}

    async def run():
        chunks = []
        async for chunk in sse.follow_task(task_id, after, **options):
            chunks.append(chunk)
            await sync_to_async(steps)(chunk)
        return parse_events("".join(chunks))

    return async_to_sync(run)()


def report_progress(current: int, total: int, status: str = "PROGRESS"):
    TaskResult.objects.update_or_create(
        task_id=TASK_ID,
        defaults={
            "status": status,
            "content_type": "application/json",
            "result": json.dumps({"current": current, "total": total}),
        },
    )


@pytest.mark.django_db(transaction=True)
class TestFollowTask:
    def test_new_lines_and_state_changes_arrive_until_the_end(self):
        report_progress(1, 2)
        make_log(messages=["one"])
        script = [
            lambda: None,
            lambda: (add_lines(TASK_ID, ["two", "three"]), report_progress(3, 4)),
            lambda: (report_progress(4, 4, status="SUCCESS"), close_log()),
            lambda: None,
        ]

        events = follow(steps=lambda chunk: script.pop(0)())
        assert kinds(events) == ["retry", "line", "state", "line", "line", "state", "end"]
        assert seqs(events) == [1, 2, 3]
        assert [e["data"]["progress"] for e in events if e.get("event") in {"state", "end"}] == [
            50.0,
            75.0,
            100.0,
        ]
        assert events[-1]["data"]["state"] == "SUCCESS"

    def test_resumes_after_the_given_seq(self):
        make_result(status="SUCCESS")
        make_log(messages=["one", "two", "three"], finished=timezone.now())
        assert seqs(follow(after=2, steps=lambda chunk: None)) == [3]

    def test_lifetime_over_closes_without_end(self):
        make_log(messages=["one"])
        events = follow(steps=lambda chunk: None, lifetime=0)
        assert kinds(events) == ["retry", "line", "state"]

    def test_sends_heartbeats_while_quiet(self):
        make_log()
        heartbeats = []

        def steps(chunk):
            if chunk == sse.HEARTBEAT:
                heartbeats.append(chunk)
                if len(heartbeats) == 2:
                    make_result(status="SUCCESS")
                    close_log()

        events = follow(steps=steps, heartbeat_interval=0)
        assert kinds(events) == ["retry", "state", "comment", "comment", "end"]
