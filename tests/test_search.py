"""Search and filters of one task's log: the regex guard, the queryset methods, the JSON endpoint.

These run on SQLite (its REGEXP is Python's ``re``, the engine the guard protects); the same
queries on PostgreSQL are in ``test_search_postgres.py``.
"""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from tasklog import search, views
from tasklog.models import Stream, TaskLogLine
from tests.rows import make_log, many_lines

pytestmark = pytest.mark.django_db

TASK = "t-search"
ROWS = [
    "Starting the import",  # 1
    (Stream.LOG, "connected to db", logging.INFO, "app.db", {"host": "db1", "port": 5432}),  # 2
    (Stream.STDERR, "WARNING: disk almost full"),  # 3
    (Stream.LOG, "slow query took 3.2 s", logging.WARNING, "app.db.slow"),  # 4
    (Stream.LOG, "retrying", logging.WARNING, "application"),  # 5
    "imported 120 rows",  # 6
    (Stream.LOG, "Import failed: timeout", logging.ERROR, "app"),  # 7
    "done",  # 8
]


@pytest.fixture
def log():
    return make_log(TASK, rows=ROWS)


def lines_of(**filters) -> list[int]:
    chosen = search.line_filter(**filters)
    return [line.seq for line in TaskLogLine.objects.for_task(TASK).chosen_by(chosen).head(100)]


def get(reader, **params):
    return reader.get(reverse("tasklog:task_log_lines", args=[TASK]), params)


class TestPatternGuard:
    @pytest.mark.parametrize(
        "pattern",
        [r"import(ed)?", r"\d+ rows", r"^(ERROR|WARNING):", r"took \d+\.\d s", r"a.*b.*c", "x{2,}"],
    )
    def test_ordinary_patterns_run(self, pattern):
        search.check_pattern(pattern)

    @pytest.mark.parametrize(
        ("pattern", "reason"),
        [
            (r"(a+)+$", "a repeat inside a repeat"),
            (r"(a*)*b", "a repeat inside a repeat"),
            (r"(\w+\s?)*$", "a repeat inside a repeat"),
            (r"(a|ab)*c", "alternatives inside a repeat"),
            (r"(.*a){12}", "a repeat inside a repeat"),
            (r"(a)\1", "back-references"),
            (r"(?P<x>a)(?P=x)", "back-references"),
            (r".*a.*b.*c.*d.*e", "5 repeats"),
            (r"(a?){30}a{30}", "a repeat inside a repeat"),
            ("a?" * 30 + "a" * 30, "30 repeats"),
        ],
    )
    def test_patterns_that_can_backtrack_for_ever_are_refused(self, pattern, reason):
        with pytest.raises(search.SearchTooExpensive, match=reason):
            search.check_pattern(pattern)

    @pytest.mark.parametrize("pattern", ["(unclosed", "*start", "a{3,1}", "[z-a]"])
    def test_an_invalid_pattern_names_the_error(self, pattern):
        with pytest.raises(search.SearchError, match=r"^Invalid regular expression: "):
            search.check_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "postgresql"),
    [
        (r"\bword\b", r"\yword\y"),
        (r"\Bx", r"\Yx"),
        (r"[\b]\b", r"[\b]\y"),
        (r"[]\b]\b", r"[]\b]\y"),
        (r"[^]\b]\b", r"[^]\b]\y"),
        (r"\\b", r"\\b"),
        (r"plain", r"plain"),
    ],
)
def test_word_boundaries_are_translated_for_postgresql_only(pattern, postgresql):
    assert search.in_dialect(pattern, "postgresql") == postgresql
    assert search.in_dialect(pattern, "sqlite") == pattern


class TestFilters:
    def test_plain_text_is_case_insensitive(self, log):
        assert lines_of(text="IMPORT") == [1, 6, 7]

    def test_regex_is_the_pattern(self, log):
        assert lines_of(text=r"\d+ rows|took \d", regex=True) == [4, 6]

    def test_streams(self, log):
        assert lines_of(streams=["stderr", "stdout"]) == [1, 3, 6, 8]
        assert lines_of(streams=["stderr,log"]) == [2, 3, 4, 5, 7]

    def test_level_by_name_or_number_keeps_records_at_or_above_it(self, log):
        assert lines_of(level="warning") == lines_of(level="30") == [4, 5, 7]
        assert lines_of(level="ERROR") == [7]

    def test_logger_takes_its_children_but_not_a_longer_name(self, log):
        assert lines_of(logger="app.db") == [2, 4]
        assert lines_of(logger="app") == [2, 4, 7]

    def test_all_combine(self, log):
        assert lines_of(text="s", level="WARNING", logger="app", streams=["log"]) == [4]

    def test_the_count_is_exact_up_to_a_limit_then_a_marked_lower_bound(self, log):
        lines = TaskLogLine.objects.for_task(TASK)
        assert lines.matching("o").count_up_to(10) == (7, True)
        assert lines.matching("o").count_up_to(7) == (7, True)
        assert lines.matching("o").count_up_to(6) == (6, False)


class TestLinesEndpoint:
    def test_a_search_answers_its_hits_in_order_with_their_count(self, reader, log):
        body = get(reader, q="import").json()
        assert [line["seq"] for line in body["lines"]] == [1, 6, 7]
        assert (body["matches"], body["matches_exact"]) == (3, True)
        assert body["task"]["task_id"] == TASK

    def test_a_plain_page_has_no_count(self, reader, log):
        assert "matches" not in get(reader).json()

    def test_a_huge_count_is_a_lower_bound_marked_as_such(self, reader, log, monkeypatch):
        monkeypatch.setattr(views, "MATCH_COUNT_LIMIT", 2)
        body = get(reader, q="o", limit=3).json()
        assert (body["matches"], body["matches_exact"]) == (2, False)
        assert len(body["lines"]) == 3

    def test_a_first_page_holding_every_hit_is_its_own_exact_count(self, reader, log, monkeypatch):
        monkeypatch.setattr(views, "MATCH_COUNT_LIMIT", 2)
        body = get(reader, q="o").json()
        assert (body["matches"], body["matches_exact"], len(body["lines"])) == (7, True, 7)

    def test_count_0_leaves_the_count_out(self, reader, log):
        """The browser's context pages and hit steps: the count can cost a read of the task."""
        body = get(reader, q="import", around=6, context=1, count="0").json()
        assert [line["seq"] for line in body["lines"]] == [5, 6, 7]
        assert "matches" not in body
        assert get(reader, q="import", count="1").json()["matches"] == 3

    def test_next_and_previous_hit_are_one_line_pages(self, reader, log):
        after = get(reader, q="import", after=1, limit=1).json()
        assert [line["seq"] for line in after["lines"]] == [6]
        before = get(reader, q="import", before=6, limit=1).json()
        assert [line["seq"] for line in before["lines"]] == [1]
        assert before["next_before"] == 1

    def test_hits_page_forwards(self, reader, log):
        first = get(reader, q="o", limit=2).json()
        second = get(reader, q="o", limit=2, after=first["next_after"]).json()
        assert [line["seq"] for line in first["lines"] + second["lines"]] == [1, 2, 3, 4]

    def test_around_gives_the_context_of_a_hit_with_the_hits_marked(self, reader, log):
        body = get(reader, q="import", around=6, context=2).json()
        assert [(line["seq"], line["match"]) for line in body["lines"]] == [
            (4, False),
            (5, False),
            (6, True),
            (7, True),
            (8, False),
        ]
        assert (body["next_before"], body["next_after"]) == (4, 8)

    def test_around_keeps_the_stream_filter(self, reader, log):
        body = get(reader, around=3, context=1, stream="stdout,stderr").json()
        assert [line["seq"] for line in body["lines"]] == [1, 3, 6]

    def test_lines_carry_their_logger_and_extra(self, reader, log):
        line = get(reader, logger="app.db", limit=1).json()["lines"][0]
        assert (line["logger"], line["extra"]) == ("app.db", {"host": "db1", "port": 5432})
        assert (line["kind"], line["error"]) == ("line", False)

    def test_regex_search(self, reader, log):
        body = get(reader, q=r"^\w+ing\b", regex="1").json()
        assert [line["seq"] for line in body["lines"]] == [1, 5]

    @pytest.mark.parametrize(
        ("params", "error"),
        [
            ({"q": "(a+)+$", "regex": "1"}, "Search too expensive: a repeat inside a repeat"),
            ({"q": "(", "regex": "1"}, "Invalid regular expression: missing ), unterminated"),
            ({"regex": "yes"}, "regex must be 1 or 0, got 'yes'."),
            ({"q": "a", "count": "no"}, "count must be 1 or 0, got 'no'."),
            ({"stream": "stdin"}, "Unknown stream 'stdin'; one of: stdout, stderr, log, marker."),
            ({"level": "LOUD"}, "Unknown level 'LOUD'; a number from 0 to 32767 or one of:"),
            ({"level": "99999"}, "Unknown level '99999'"),
            ({"context": "1001", "around": "1"}, "context must be a whole number from 0 to 1000"),
        ],
    )
    def test_bad_search_parameters_are_a_400_that_says_why(self, reader, log, params, error):
        response = get(reader, **params)
        assert response.status_code == 400
        assert response.json()["error"].startswith(error)

    def test_a_search_out_of_time_is_a_400_too_expensive(self, reader, log, monkeypatch):
        TaskLogLine.objects.for_task(TASK).delete()
        many_lines(TASK, 30_000)  # enough work for the clock to be looked at
        monkeypatch.setattr(search, "SEARCH_SECONDS", 0.0)
        response = get(reader, q="absent")
        assert response.status_code == 400
        assert response.json()["too_expensive"] is True
        assert response.json()["error"].startswith("Search too expensive: it took longer than")
        # The connection is usable again at once.
        monkeypatch.setattr(search, "SEARCH_SECONDS", 5.0)
        assert get(reader).status_code == 200

    def test_the_time_limit_ends_with_the_search(self, log):
        """The connection outlives the request (MariaDB's limit is a session variable): a
        query after the search runs without it."""
        TaskLogLine.objects.for_task(TASK).delete()
        many_lines(TASK, 30_000)
        absent = TaskLogLine.objects.for_task(TASK).filter(message__icontains="absent")
        with pytest.raises(search.SearchTooExpensive), search.time_limit(absent.db, seconds=0.0):
            absent.count()
        assert absent.count() == 0


class TestDownload:
    def download(self, reader, **params):
        return reader.get(reverse("tasklog:task_log_download", args=[TASK]), params)

    @pytest.fixture
    def coloured(self):
        return make_log(TASK, rows=["\x1b[1;31mred\x1b[0m \x1b]8;;https://x\x07link\x1b]8;;\x07"])

    def test_escapes_are_stripped_by_default(self, reader, coloured):
        text = b"".join(self.download(reader).streaming_content).decode()
        assert text.endswith(" stdout red link\n")

    def test_ansi_keep_keeps_them(self, reader, coloured):
        text = b"".join(self.download(reader, ansi="keep").streaming_content).decode()
        assert text.endswith(" stdout \x1b[1;31mred\x1b[0m \x1b]8;;https://x\x07link\x1b]8;;\x07\n")

    def test_records_show_their_logger_and_extra(self, reader, log):
        text = b"".join(self.download(reader).streaming_content).decode()
        assert " log:INFO [app.db] connected to db host=db1 port=5432\n" in text

    @pytest.mark.abuse
    @pytest.mark.parametrize("value", ["", "KEEP", "keep\x00", "k" * 10_000, "strip;drop"])
    def test_another_ansi_value_is_a_400(self, reader, log, value):
        response = self.download(reader, ansi=value)
        assert response.status_code == 400
        assert response.json()["error"].startswith("ansi must be strip or keep, got ")
