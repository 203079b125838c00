"""Following a task's log over HTTP with an API token: ``tasklog-follow`` and
``manage.py tasklog_follow --url``. Needs no Django settings, only httpx and httpx-sse
(``pip install celery-tasklog[remote]``).

The follower reads the task's SSE endpoint. Every line event carries its seq as ``id:``; after
a dropped connection, a server restart or the stream's lifetime the follower reconnects with
``Last-Event-ID`` set to the last seq it printed, so no line is printed twice and none is
missed. It ends with the ``end`` event, whose state gives the exit status (as the local
follow: 0 success, 1 failure, 2 timeout, 130 interrupted; 3 when the server refuses the token).
A task the server does not know yet is waited for, as the local follow waits for a task that
has not started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator

try:
    import httpx
    import httpx_sse
except ImportError as missing:
    raise ImportError(
        f"Following over HTTP needs httpx and httpx-sse ({missing}): "
        "pip install 'celery-tasklog[remote]'"
    ) from missing

from .portable import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    SUCCESSFUL_STATES,
    plain_text,
    quiet_when_reader_leaves,
    record_text,
    style_name,
    task_id_segment,
)
from .terminal import safe as shown

TOKEN_VARIABLE = "TASKLOG_TOKEN"
RECONNECT_DELAY = 1.0  # until the server says otherwise with ``retry:``
MAX_RECONNECT_DELAY = 30.0
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 40.0  # the server sends a heartbeat every 15 s
MAX_SEQ = 2_147_483_647


class RemoteTimeout(Exception):
    """The task had not ended when the follower's time was up; ``state`` is its last state."""

    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


class RemoteRefused(Exception):
    """The server refused the token (401) or its user (403): retrying cannot help."""


class RemoteFollower:
    """The lines of one task read from a tasklog site, until its log is complete."""

    def __init__(
        self,
        base_url: str,
        task_id: str,
        token: str,
        *,
        client: httpx.Client | None = None,
        after: int = 0,
        on_waiting: Callable[[], None] = lambda: None,
        on_lost: Callable[[Exception], None] = lambda error: None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_url = base_url.rstrip("/") + "/" + task_id_segment(task_id) + "/"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = client or httpx.Client(follow_redirects=False)
        self.after = after
        self.on_waiting = on_waiting
        self.on_lost = on_lost
        self.sleep = sleep
        self.clock = clock
        self.state = "PENDING"
        self.reconnect_delay = RECONNECT_DELAY
        self.ended = False

    def start_at_tail(self, count: int) -> None:
        """Begin with the last ``count`` lines instead of the first."""
        response = self.client.get(
            self.task_url + "lines/",
            params={"before": MAX_SEQ, "limit": max(count, 1)},
            headers=self.headers,
            timeout=CONNECT_TIMEOUT,
        )
        self.raise_for_refusal(response)
        if response.status_code == 200:
            page = parsed(response.text, {"lines": list})["lines"]
            lines = [checked(line, LINE_FIELDS) for line in (page if count else page[-1:])]
            self.after = (lines[0]["seq"] - 1 if count else lines[-1]["seq"]) if lines else 0

    def lines(self, timeout: float | None = None) -> Iterator[dict]:
        """Every line after ``after`` once, reconnecting as often as needed, until ``end``."""
        deadline = None if timeout is None else self.clock() + timeout
        waiting_said = lost = False
        while True:
            try:
                yield from self.one_connection(deadline)
                if self.ended:
                    return
                lost = False
            except (httpx.TransportError, httpx_sse.SSEError, BadEvent) as error:
                if deadline is not None and self.clock() >= deadline:
                    raise RemoteTimeout(self.state) from None  # cut short by --timeout: not lost
                if not lost:  # the server went away or sent something else: come back
                    self.on_lost(error)
                    lost = True
            except TaskNotKnownYet:
                if not waiting_said:
                    self.on_waiting()
                    waiting_said = True
            if deadline is not None and self.clock() >= deadline:
                raise RemoteTimeout(self.state)
            self.sleep(self.reconnect_delay)

    def one_connection(self, deadline: float | None) -> Iterator[dict]:
        headers = dict(self.headers)
        if self.after:
            headers["Last-Event-ID"] = str(self.after)
        read_timeout = READ_TIMEOUT
        if deadline is not None:
            read_timeout = max(0.1, min(READ_TIMEOUT, deadline - self.clock()))
        timeout = httpx.Timeout(CONNECT_TIMEOUT, read=read_timeout)
        url = self.task_url + "events/"
        with httpx_sse.connect_sse(
            self.client, "GET", url, headers=headers, timeout=timeout
        ) as source:
            self.raise_for_refusal(source.response)
            if source.response.status_code == 404:
                raise TaskNotKnownYet
            if source.response.status_code != 200:
                return  # a server error: come back later
            for event in source.iter_sse():
                if event.retry:
                    self.reconnect_delay = min(event.retry / 1000, MAX_RECONNECT_DELAY)
                if event.event == "line":
                    line = parsed(event.data, LINE_FIELDS)
                    if line["seq"] > self.after:
                        self.after = line["seq"]
                        yield line
                elif event.event in ("state", "end"):
                    self.state = parsed(event.data, TASK_FIELDS)["state"]
                    if event.event == "end":
                        self.ended = True
                        return
                if deadline is not None and self.clock() >= deadline:
                    raise RemoteTimeout(self.state)

    @staticmethod
    def raise_for_refusal(response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            response.read()
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.reason_phrase
            raise RemoteRefused(f"{response.status_code}: {message}")


class BadEvent(ValueError):
    """The server sent data that is not what a tasklog site sends: treated as a lost stream."""


LINE_FIELDS = {"seq": int, "stream": str, "level": (str, type(None)), "message": str}
TASK_FIELDS = {"state": str}


def parsed(data: str, fields: dict) -> dict:
    """The JSON object in ``data`` if it has ``fields`` of their types; ``BadEvent`` otherwise."""
    try:
        return checked(json.loads(data), fields)
    except ValueError:
        raise BadEvent(f"unexpected data: {data[:80]!r}") from None


def checked(value, fields: dict) -> dict:
    """``value`` if it is an object with ``fields`` of their types; ``ValueError`` otherwise."""
    if not isinstance(value, dict) or not all(
        isinstance(value.get(name), kind) for name, kind in fields.items()
    ):
        raise BadEvent(f"unexpected data: {str(value)[:80]!r}")
    return value


class TaskNotKnownYet(Exception):
    """The server has no log or result for the task (404): it has not been published yet."""


def follow(
    url: str,
    task_id: str,
    token: str,
    *,
    write_line: Callable[[str, str], None],
    write_notice: Callable[[str], None],
    tail: int | None = None,
    timeout: float | None = None,
    client: httpx.Client | None = None,
) -> tuple[int, str]:
    """Print the task's lines as the local follow does; the exit status and closing message.

    ``write_line(text, style_name)`` gets each line, already safe for a terminal.
    """
    follower = RemoteFollower(url, task_id, token, client=client)
    follower.on_waiting = lambda: write_notice(f"Waiting for task {shown(task_id)} to start...")
    follower.on_lost = lambda error: write_notice(
        f"Lost the connection ({shown(str(error) or type(error).__name__)}); reconnecting..."
    )
    try:
        if tail is not None:
            follower.start_at_tail(tail)
        for line in follower.lines(timeout):
            message = record_text(line["message"], line.get("logger", ""), line.get("extra"))
            text = plain_text(line["stream"], line["level"], message)
            write_line(shown(text), style_name(line["stream"], line["level"]))
    except RemoteTimeout as timed_out:
        message = (
            f"Timed out after {timeout:g} s; task {shown(task_id)} is {shown(timed_out.state)}."
        )
        return EXIT_TIMEOUT, message
    except RemoteRefused as refused:
        return EXIT_REFUSED, f"The server refused: {shown(str(refused))}"
    except (httpx.HTTPError, BadEvent) as error:
        return EXIT_FAILED, f"Cannot read {shown(url)}: {shown(str(error))}"
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED, "Interrupted."
    status = 0 if follower.state in SUCCESSFUL_STATES else EXIT_FAILED
    return status, f"Task {shown(task_id)} ended: {shown(follower.state)}."


@quiet_when_reader_leaves()
def main(argv: list[str] | None = None) -> int:
    """``tasklog-follow --url https://site/tasklog/ TASK_ID``: the console script."""
    parser = argparse.ArgumentParser(
        prog="tasklog-follow",
        description="Print a task's log from a tasklog site like tail -f until the task ends. "
        "Exit status: 0 success, 1 failure, 2 timeout, 3 refused, 130 interrupted, "
        "141 output closed.",
    )
    parser.add_argument("task_id", help="Celery task id; the task need not have started.")
    parser.add_argument("--url", required=True, help="The site's tasklog URL prefix.")
    parser.add_argument(
        "--token", help=f"API token (default: the environment variable {TOKEN_VARIABLE})."
    )
    parser.add_argument("--tail", type=count, metavar="N", help="Start with the last N lines.")
    parser.add_argument("--timeout", type=seconds, help="Give up after this many seconds.")
    options = parser.parse_args(argv)
    token = options.token or os.environ.get(TOKEN_VARIABLE)
    if not token:
        parser.error(f"an API token is needed: --token or {TOKEN_VARIABLE}")
    if not options.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    colours = colour_functions(sys.stdout)

    def write_line(text: str, style: str) -> None:
        print(colours.get(style, str)(text), flush=True)

    status, message = follow(
        options.url,
        options.task_id,
        token,
        write_line=write_line,
        write_notice=lambda text: print(text, file=sys.stderr, flush=True),
        tail=options.tail,
        timeout=options.timeout,
    )
    print(message, file=sys.stderr, flush=True)
    return status


def count(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise argparse.ArgumentTypeError(f"must be a whole number from 0, got {text!r}")
    return int(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10**9:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def colour_functions(stream) -> dict[str, Callable[[str], str]]:
    """Django's terminal colours (no settings needed) when ``stream`` is a colour terminal."""
    from django.core.management.color import color_style, supports_color

    if not (getattr(stream, "isatty", lambda: False)() and supports_color()):
        return {}
    style = color_style()
    return {name: getattr(style, name) for name in ("ERROR", "WARNING", "NOTICE")}


if __name__ == "__main__":
    sys.exit(main())
