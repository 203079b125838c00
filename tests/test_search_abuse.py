"""Hostile search and filter parameters of the lines endpoint: 4xx, never 5xx, never a hang."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasklog.models import Stream
from tests.rows import make_log

pytestmark = [pytest.mark.abuse, pytest.mark.django_db]

TASK = "t-hostile"
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LONG_LINE = "a" * 9_999 + "!"


@pytest.fixture
def log():
    return make_log(
        TASK,
        rows=["plain", LONG_LINE, (Stream.LOG, "ünïcødé ✓ 日本", 30, "app.ü"), "100% _done_"],
    )


def get(client, **params):
    return client.get(reverse("tasklog:task_log_lines", args=[TASK]), params)


def hits(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [line["seq"] for line in response.json()["lines"]]


@pytest.mark.parametrize(
    "pattern",
    [
        *(r"(a+)+$", r"(a|aa)*!x", r"(.*a){20}", r"^(\w+\s?)*$", r"(a*)*b", r"(x+x+)+y"),
        *(r"(a)\1*", r"(a?){25}a{25}", "a?" * 25 + "a" * 25),
    ],
)
def test_catastrophic_patterns_are_refused_at_once(reader, log, pattern):
    started = time.monotonic()
    response = get(reader, q=pattern, regex="1")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Search too expensive: ")
    assert time.monotonic() - started < 1


def test_a_huge_query_is_refused(reader, log):
    response = get(reader, q="x" * 100_000)
    assert response.status_code == 400
    assert response.json()["error"] == "The search is 100,000 characters; at most 1000."


@pytest.mark.parametrize("name", ["q", "logger"])
def test_nul_is_refused(reader, log, name):
    response = get(reader, **{name: "a\x00b"})
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "ünïcødé ✓"}, [3]),
        ({"q": "日本", "regex": "1"}, [3]),
        ({"q": "100%"}, [4]),
        ({"q": "_done_"}, [4]),
        ({"q": "%"}, [4]),
        ({"q": "_"}, [4]),
        ({"q": "' OR 1=1 --"}, []),
        ({"q": "\\"}, []),
        ({"logger": "app.ü"}, [3]),
        ({"logger": "app%"}, []),
        ({"logger": "' OR ''='"}, []),
    ],
)
def test_wildcards_quotes_and_unicode_are_plain_text(reader, log, params, expected):
    assert hits(get(reader, **params)) == expected


def test_a_long_line_is_searched_to_its_end(reader, log):
    assert hits(get(reader, q="a!")) == [2]
    assert hits(get(reader, q=r"a{200}!$", regex="1")) == [2]  # PostgreSQL counts up to 255


@FUZZ
@given(
    q=st.text(max_size=40),
    regex=st.sampled_from(["", "0", "1", "true", "x"]),
    stream=st.one_of(st.just(""), st.text(max_size=12), st.sampled_from(["log", "stdout,log"])),
    level=st.one_of(st.just(""), st.text(max_size=8), st.integers(-5, 70000).map(str)),
    logger=st.text(max_size=20),
    around=st.one_of(st.just(""), st.integers(-3, 5).map(str), st.text(max_size=5)),
    context=st.one_of(st.just(""), st.integers(-3, 2000).map(str)),
)
def test_fuzzed_parameters_are_answered_or_refused_never_a_5xx(
    reader, log, q, regex, stream, level, logger, around, context
):
    params = {"q": q, "regex": regex, "stream": stream, "level": level, "logger": logger}
    params |= {"around": around, "context": context}
    started = time.monotonic()
    response = get(reader, **params)
    assert response.status_code in (200, 400), response.content
    assert time.monotonic() - started < 6
    if response.status_code == 400:
        assert response.json()["error"]


@FUZZ
@given(pattern=st.from_regex(r"[()a|*+?.\\1{}2,]{1,14}", fullmatch=True))
def test_fuzzed_patterns_run_quickly_or_are_refused(reader, log, pattern):
    started = time.monotonic()
    response = get(reader, q=pattern, regex="1")
    assert response.status_code in (200, 400), response.content
    assert time.monotonic() - started < 6
