"""Groups (``::group::``/``::endgroup::``) and retry attempts as sections, in JSON and terminal."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from tasklog import live, sections
from tasklog.models import Stream, TaskLogLine
from tests.rows import make_log

pytestmark = pytest.mark.django_db

TASK = "t-groups"
ROWS = [
    "start",  # 1
    "::group::Build",  # 2
    "compiling",  # 3
    "::group::Link",  # 4
    (Stream.STDERR, "undefined symbol"),  # 5
    "::endgroup::",  # 6
    "::endgroup::",  # 7
    "::group::Never closed",  # 8
    (Stream.MARKER, "Attempt 2 (retry) started on celery@w1."),  # 9
    "::group::Again",  # 10
    (Stream.LOG, "inside", logging.ERROR, "app"),  # 11
    "::endgroup::",  # 12
    "end",  # 13
]


@pytest.fixture
def log():
    return make_log(TASK, rows=ROWS)


def get(reader, **params) -> dict:
    response = reader.get(reverse("tasklog:task_log_lines", args=[TASK]), params)
    assert response.status_code == 200, response.content
    return response.json()


def places(lines) -> list[tuple]:
    return [(line["seq"], line["kind"], line["depth"], line["group"]) for line in lines]


def test_every_line_knows_its_group_and_depth(reader, log):
    assert places(get(reader)["lines"]) == [
        (1, "line", 0, 0),
        (2, "group_start", 0, 0),
        (3, "line", 1, 2),
        (4, "group_start", 1, 2),
        (5, "line", 2, 4),
        (6, "group_end", 1, 2),
        (7, "group_end", 0, 0),
        (8, "group_start", 0, 0),
        (9, "attempt", 0, 0),  # a retry closes what the previous attempt left open
        (10, "group_start", 0, 0),
        (11, "line", 1, 10),
        (12, "group_end", 0, 0),
        (13, "line", 0, 0),
    ]


def test_a_page_in_the_middle_knows_the_groups_open_before_it(reader, log):
    body = get(reader, after=4, limit=2)
    assert body["open_groups"] == [{"seq": 2, "title": "Build"}, {"seq": 4, "title": "Link"}]
    assert places(body["lines"]) == [(5, "line", 2, 4), (6, "group_end", 1, 2)]


def test_search_hits_are_placed_among_groups_they_do_not_show(reader, log):
    body = get(reader, q="^(undefined|inside)", regex="1")
    assert places(body["lines"]) == [(5, "line", 2, 4), (11, "line", 1, 10)]


def test_each_group_start_sums_up_its_group_for_a_folded_view(reader, log):
    lines = get(reader)["lines"]
    assert {line["seq"]: line["section"] for line in lines if "section" in line} == {
        2: {"end": 7, "lines": 4, "duration": 2.5, "error": True},
        4: {"end": 6, "lines": 1, "duration": 1.0, "error": True},
        8: {"end": 9, "lines": 0, "duration": 0.5, "error": False},  # closed by the retry
        10: {"end": 12, "lines": 1, "duration": 1.0, "error": True},
    }


def test_an_open_group_has_no_end_yet(reader):
    make_log(TASK, rows=["::group::Running", "step 1", "step 2"])
    [start, *_rest] = get(reader)["lines"]
    assert start["section"] == {"end": None, "lines": 2, "duration": None, "error": False}


def test_errors_are_flagged_so_their_group_can_open(reader, log):
    lines = get(reader)["lines"]
    assert [line["seq"] for line in lines if line["error"]] == [5, 11]


def test_sse_lines_carry_their_place(reader, log):
    events = reader.get(reverse("tasklog:task_log_events", args=[TASK]), {"after": 4})
    first = next(
        json.loads(part.split("data: ", 1)[1])
        for part in events.content.decode().split("\n\n")
        if "event: line" in part
    )
    assert (first["seq"], first["depth"], first["group"]) == (5, 2, 4)


def test_only_the_lines_that_open_or_close_a_section_are_read_to_place_a_page(log):
    lines = TaskLogLine.objects.for_task(TASK)
    assert [seq for seq, *_rest in sections.section_lines(lines)] == [2, 4, 6, 7, 8, 9, 10, 12]


def test_the_page_ships_the_attempt_markers_of_a_retried_task_only(
    monkeypatch, django_assert_num_queries
):
    rows = [
        "first",
        (Stream.MARKER, "Attempt ended: Retry in 1s"),
        (Stream.MARKER, "Attempt 2 (retry) started on celery@w1."),
        "Attempt 3 (retry) started, says stdout",  # not a marker: no attempt
        (Stream.MARKER, "Attempt ended: Retry in 1s"),
        (Stream.MARKER, "Attempt 3 (retry) started on celery@w1."),
    ]
    retried = make_log(TASK, rows=rows, attempts=3)
    markers = live.attempt_markers(TASK, retried)
    assert [(line["seq"], line["kind"]) for line in markers] == [
        (2, "line"),
        (3, "attempt"),
        (5, "line"),
        (6, "attempt"),
    ]
    monkeypatch.setattr(live, "MAX_ATTEMPT_MARKERS", 2)
    assert [line["seq"] for line in live.attempt_markers(TASK, retried)] == [2, 3]
    retried.attempts = 1  # run once: no attempt sections, no read
    with django_assert_num_queries(0):
        assert live.attempt_markers(TASK, retried) == []
        assert live.attempt_markers(TASK, None) == []


def show(*args) -> str:
    out = StringIO()
    call_command("tasklog_show", TASK, *args, stdout=out)
    return out.getvalue()


def test_show_indents_groups_under_headers_with_count_and_duration(log):
    assert show("--format", "plain") == (
        "start\n"
        "▸ Build\n"
        "  compiling\n"
        "  ▸ Link\n"
        "    undefined symbol\n"
        "  ◂ Link: 1 line, 1.000 s\n"
        "◂ Build: 4 lines, 2.500 s\n"
        "▸ Never closed\n"
        "Attempt 2 (retry) started on celery@w1.\n"
        "▸ Again\n"
        "  ERROR: app: inside\n"
        "◂ Again: 1 line, 1.000 s\n"
        "end\n"
    )


def test_show_table_indents_the_message_column(log):
    rows = show("--tail", "4").splitlines()
    column = rows[-6].index("message")
    assert [row[column:] for row in rows[-4:]] == [
        "▸ Again",
        "  app: inside",
        "◂ Again: 1 line, 1.000 s",
        "end",
    ]


def test_show_of_a_filtered_page_keeps_the_depth(log):
    assert show("--format", "plain", "--stream", "stderr") == "    undefined symbol\n"


def test_group_titles_are_escaped_for_the_terminal(log):
    make_log("t-evil", rows=["::group::\x1b]52;c;aGk=\x07evil", "x", "::endgroup::"])
    out = StringIO()
    call_command("tasklog_show", "t-evil", "--format", "plain", stdout=out)
    assert out.getvalue().splitlines()[0] == "▸ \\x1b]52;c;aGk=\\x07evil"


def test_the_helper_writes_the_group_lines(capsys):
    import tasklog

    with pytest.raises(ValueError), tasklog.group("Two\nlines"):
        print("inside")
        raise ValueError
    assert capsys.readouterr().out == "::group::Two lines\ninside\n::endgroup::\n"


def test_importing_tasklog_loads_no_django():
    code = "import sys, tasklog; tasklog.group; print([m for m in sys.modules if 'django' in m])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
