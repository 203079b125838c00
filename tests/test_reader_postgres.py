"""The reader on real PostgreSQL: logger and extra captured by a real worker (binary COPY into
the jsonb column), groups written by ``tasklog.group``, search in PostgreSQL's own dialect, and
the statement timeout that ends a search too expensive."""

from __future__ import annotations

import logging

import pytest
from celery import states
from django.urls import reverse

from tasklog import search
from tasklog.models import Stream, TaskLogLine
from tests import harness, tasks
from tests.rows import make_log, many_lines

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]  # its regex, timeout and plans


def lines_json(client, task_id: str, **params):
    return client.get(reverse("tasklog:task_log_lines", args=[task_id]), params)


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_stores_logger_extra_and_groups(worker_factory, reader, pool):
    worker = worker_factory(pool=pool, concurrency=2)
    result = tasks.log_in_groups.delay()
    assert harness.wait_for_task_result(result.id, worker=worker).status == states.SUCCESS

    stored = list(
        TaskLogLine.objects.for_task(result.id)
        .order_by("seq")
        .values_list("stream", "logger", "message", "extra")
    )
    assert stored == [
        (Stream.STDOUT, "", "before the groups", None),
        (Stream.STDOUT, "", "::group::Build", None),
        (Stream.LOG, "tests.build", "compiled", {"obj": "object", "files": 3, "target": "x86 64"}),
        (Stream.STDOUT, "", "::group::Link", None),
        (Stream.LOG, "tests.build.linker", "undefined symbol", None),
        (Stream.STDOUT, "", "::endgroup::", None),
        (Stream.STDOUT, "", "::endgroup::", None),
        (Stream.LOG, "other", "outside", None),
    ]
    body = lines_json(reader, result.id, logger="tests.build").json()
    placed = [(line["seq"], line["depth"], line["group"], line["error"]) for line in body["lines"]]
    assert placed == [
        (3, 1, 2, False),
        (5, 2, 4, True),
    ]
    assert (body["matches"], body["matches_exact"]) == (2, True)


@pytest.mark.django_db
def test_search_runs_in_postgresql_and_folds_unicode_case(reader):
    make_log(
        "t-pg",
        rows=["Größe ÜNÏCODE", (Stream.LOG, "slow query", logging.WARNING, "app.db"), "done"],
    )
    assert [line["seq"] for line in lines_json(reader, "t-pg", q="ünïcode").json()["lines"]] == [1]
    regex = lines_json(reader, "t-pg", q=r"^(slow|done)\b", regex="1").json()
    assert [line["seq"] for line in regex["lines"]] == [2, 3]
    # \b is a word boundary as in Python, not PostgreSQL's backspace; in brackets, a backspace.
    assert lines_json(reader, "t-pg", q=r"lo\b", regex="1").json()["lines"] == []
    assert lines_json(reader, "t-pg", q=r"Gr[\b]", regex="1").json()["lines"] == []


@pytest.mark.django_db
def test_a_pattern_postgresql_refuses_is_a_400_naming_the_error(reader):
    make_log("t-pg", rows=["x"])
    response = lines_json(reader, "t-pg", q="(?P<name>x)", regex="1")  # Python has it, ARE not
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid regular expression: ")
    counted = lines_json(reader, "t-pg", q="x{256}", regex="1")  # ARE counts up to 255
    assert counted.json() == {"error": "Invalid regular expression: invalid repetition count(s)"}


@pytest.mark.django_db
def test_the_statement_timeout_ends_a_search_too_expensive(reader, monkeypatch):
    make_log("t-pg")
    many_lines("t-pg", 200_000)
    monkeypatch.setattr(search, "SEARCH_SECONDS", 0.001)
    response = lines_json(reader, "t-pg", q="no such text")
    assert response.status_code == 400
    assert response.json()["too_expensive"] is True
    monkeypatch.setattr(search, "SEARCH_SECONDS", 30)
    body = lines_json(reader, "t-pg", q="line 199999").json()
    assert [line["seq"] for line in body["lines"]] == [199_999]


@pytest.mark.django_db
def test_the_section_lines_are_read_through_their_partial_index():
    from django.db import connection

    from tasklog import sections

    make_log("t-pg", rows=["a", "::group::G", "b", "::endgroup::"])
    query = sections.section_lines(TaskLogLine.objects.for_task("t-pg").before(3))
    queryset = TaskLogLine.objects.for_task("t-pg").before(3).sections().order_by("seq")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.values_list("seq", "stream", "message", "timestamp").explain()
    assert "tasklog_line_section_idx" in plan
    assert [row[0] for row in query] == [2]


@pytest.mark.django_db
def test_a_search_walks_the_task_index_in_seq_order():
    """The planner, guessing few hits, would read and sort all of them: never for a reader."""
    make_log("t-pg")
    many_lines("t-pg", 20_000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasklog_tasklogline")
    page = TaskLogLine.objects.for_task("t-pg").matching("line 1").order_by("seq")[:500]
    with search.walking_the_index("default"):
        plan = page.explain()
    assert "tasklog_line_task_seq_uniq" in plan
    assert "Sort" not in plan and "Seq Scan" not in plan
