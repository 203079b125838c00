"""``tasklog.remote`` against a site that misbehaves: cut streams, junk events, hostile text.

The site is an ``httpx.MockTransport``: the edge whose failures these tests are about. The
real site is in tests/test_access_http.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tasklog import remote

URL = "https://site.test/tasklog/"


def line_event(seq: int, message: str, stream: str = "stdout", level=None) -> str:
    data = {"seq": seq, "timestamp": None, "stream": stream, "level": level, "message": message}
    return f"id: {seq}\nevent: line\ndata: {json.dumps(data)}\n\n"


def end_event(state: str = "SUCCESS") -> str:
    return f"event: end\ndata: {json.dumps({'state': state})}\n\n"


class Site:
    """Answers each connection with the next body; records the Last-Event-ID it was sent."""

    def __init__(self, *bodies, status: int = 200):
        self.bodies = list(bodies)
        self.status = status
        self.resumed_after: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.resumed_after.append(request.headers.get("Last-Event-ID"))
        body = self.bodies.pop(0)
        if isinstance(body, Exception):
            raise body
        headers = {"Content-Type": "text/event-stream"}
        if self.status != 200:
            headers = {"Content-Type": "application/json"}
        return httpx.Response(self.status, text=body, headers=headers)


def follow(site: Site, **options) -> tuple[int, str, list, list]:
    lines, notices = [], []
    status, message = remote.follow(
        URL,
        "task-1",
        "tasklog_key",
        write_line=lambda text, style: lines.append((text, style)),
        write_notice=notices.append,
        client=httpx.Client(transport=httpx.MockTransport(site)),
        **options,
    )
    return status, message, lines, notices


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(remote, "RECONNECT_DELAY", 0)
    monkeypatch.setattr(remote.time, "sleep", lambda seconds: None)


def test_a_cut_stream_resumes_after_the_last_line_printed():
    site = Site(
        line_event(1, "one") + line_event(2, "two"),  # then the connection ends, no "end"
        httpx.ConnectError("refused while the site restarts"),
        line_event(2, "two") + line_event(3, "three", "stderr") + end_event(),
    )
    status, message, lines, notices = follow(site)
    assert lines == [("one", ""), ("two", ""), ("three", "ERROR")]
    assert site.resumed_after == [None, "2", "2"]
    assert (status, message) == (0, "Task task-1 ended: SUCCESS.")
    assert notices == ["Lost the connection (refused while the site restarts); reconnecting..."]


@pytest.mark.parametrize(("state", "status"), [("FAILURE", 1), ("REVOKED", 1), ("FINISHED", 0)])
def test_the_exit_status_follows_the_end_state(state, status):
    assert follow(Site(end_event(state)))[:2] == (status, f"Task task-1 ended: {state}.")


@pytest.mark.abuse
@pytest.mark.parametrize(
    "junk",
    [
        "event: line\ndata: {not json\n\n",
        'event: line\ndata: {"seq": "1", "stream": "stdout", "message": "x"}\n\n',
        "event: line\ndata: [1, 2]\n\n",
        "event: end\ndata: {}\n\n",
    ],
)
def test_junk_from_the_site_is_a_lost_stream_not_a_crash(junk):
    status, _message, lines, notices = follow(Site(junk, line_event(1, "ok") + end_event()))
    assert (status, lines) == (0, [("ok", "")])
    assert notices[0].startswith("Lost the connection (unexpected data")


@pytest.mark.abuse
def test_text_from_the_site_cannot_drive_the_terminal():
    hostile = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\u202eevil\u2028next\x9b\ud800"
    _status, _message, lines, _notices = follow(
        Site(line_event(1, hostile, "log", "WARNING") + end_event("SUCCESS\x1b[2J"))
    )
    assert lines == [
        (
            "WARNING: \\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\u202eevil\\u2028next\\x9b\\ud800",
            "WARNING",
        )
    ]
    assert "\x1b" not in _message


@pytest.mark.parametrize(("status", "code"), [(401, 3), (403, 3)])
def test_a_refusal_ends_at_once(status, code):
    site = Site(json.dumps({"error": "The token is unknown, expired or revoked."}), status=status)
    result, message, _lines, _notices = follow(site)
    assert result == code
    assert message == f"The server refused: {status}: The token is unknown, expired or revoked."


def test_tail_starts_with_the_last_lines():
    def site(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/lines/"):
            assert request.url.params["limit"] == "2"
            page = {
                "lines": [
                    {"seq": 4, "stream": "stdout", "level": None, "message": "4"},
                    {"seq": 5, "stream": "stdout", "level": None, "message": "5"},
                ]
            }
            return httpx.Response(200, json=page)
        assert request.headers["Last-Event-ID"] == "3"
        body = line_event(4, "4") + line_event(5, "5") + end_event()
        return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})

    lines = []
    remote.follow(
        URL, "task-1", "k", write_line=lambda text, style: lines.append(text),
        write_notice=print, tail=2, client=httpx.Client(transport=httpx.MockTransport(site)),
    )  # fmt: skip
    assert lines == ["4", "5"]


def test_the_task_id_is_one_url_segment():
    follower = remote.RemoteFollower(URL, "nightly report/2024 #1", "k")
    assert follower.task_url == "https://site.test/tasklog/~bmlnaHRseSByZXBvcnQvMjAyNCAjMQ/"
