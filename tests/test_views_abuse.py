"""Hostile and unlucky input to the web views: 4xx, never 5xx; refusals that say why."""

from __future__ import annotations

import string
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.logs import TASK_ID, make_log, make_result, make_user

pytestmark = [pytest.mark.abuse, pytest.mark.django_db]

ENDPOINTS = ("task_log_events", "task_log_lines", "task_log_download")
GET_ONLY = ("task_log", *ENDPOINTS)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Text of every kind, and numbers as digits of every kind (superscripts and other scripts'
# digits pass str.isdigit(); int() refuses more than 4,300 digits).
NUMBERISH = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(string.digits + "²¹٣൬ -+.e", max_size=12),
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),
)
PARAMETER_TEXT = st.one_of(st.text(max_size=30), NUMBERISH)
# What a header value can carry through the test client: latin-1 text without line breaks.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)


def url(name: str, task_id: str = TASK_ID) -> str:
    return reverse(f"tasklog:{name}", args=[task_id])


@pytest.fixture
def log():
    return make_log(messages=[f"line {n}" for n in range(1, 6)])


@pytest.mark.parametrize(
    ("view", "params", "headers"),
    [
        ("task_log_lines", {"after": "²"}, {}),
        ("task_log_lines", {"limit": "¹"}, {}),
        ("task_log_lines", {"before": "٣"}, {}),  # an Arabic-Indic digit: isdigit() is True
        ("task_log_lines", {"after": "9" * 5000}, {}),
        ("task_log_lines", {"limit": "0" * 5000 + "1"}, {}),
        ("task_log_events", {"after": "²"}, {}),
        ("task_log_events", {"after": "9" * 5000}, {}),
        ("task_log_events", {}, {"last-event-id": "²"}),
        ("task_log_events", {}, {"last-event-id": "9" * 5000}),
    ],
)
def test_bad_numbers_are_a_400_that_says_which_parameter(reader, log, view, params, headers):
    response = reader.get(url(view), params, headers=headers)
    assert response.status_code == 400
    name = next(iter(params), "Last-Event-ID")
    assert response.json()["error"].startswith(f"{name} must be a whole number from 0 to")


@given(
    params=st.dictionaries(
        st.sampled_from(["after", "before", "limit", "x"]), PARAMETER_TEXT, max_size=4
    )
)
@FUZZ
def test_fuzzed_query_parameters_never_give_a_5xx(reader, log, params):
    for view in GET_ONLY:
        response = reader.get(url(view), params)
        assert response.status_code in {200, 400}, (view, params, response.content[:300])


@given(last_event_id=st.one_of(HEADER_TEXT, NUMBERISH), after=NUMBERISH)
@FUZZ
def test_fuzzed_last_event_id_never_gives_a_5xx(reader, log, last_event_id, after):
    response = reader.get(
        url("task_log_events"), {"after": after}, headers={"last-event-id": last_event_id}
    )
    assert response.status_code in {200, 400}, (last_event_id, after)


@pytest.mark.parametrize("view", GET_ONLY)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_are_a_405_even_without_a_csrf_token(view, method, log):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("reader"))
    response = getattr(client, method)(url(view))
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


class TestRefusals:
    def test_a_staff_user_without_the_permission_is_told_which_one(self, client, log):
        client.force_login(make_user("staff", can_read_logs=False))
        for view in ENDPOINTS:
            response = client.get(url(view))
            assert response.status_code == 403
            assert "tasklog.view_tasklogline" in response.json()["error"]
        page = client.get(url("task_log"))
        assert page.status_code == 403
        assert "tasklog.view_tasklogline" in page.content.decode()
        assert "line 1" not in page.content.decode()


class TestStaleRuns:
    """A run silent for STALE_AFTER is INTERRUPTED for every reader, before any sweep."""

    @pytest.fixture
    def silent_log(self, settings):
        settings.CELERY_TASKLOG_STALE_AFTER = 60
        make_result(status="STARTED")
        return make_log(messages=["last words"], last_seen=timezone.now() - timedelta(seconds=61))

    def test_json_and_page_say_interrupted(self, reader, silent_log):
        task = reader.get(url("task_log_lines")).json()["task"]
        assert (task["state"], task["interrupted"], task["complete"]) == ("INTERRUPTED", True, True)
        html = reader.get(url("task_log")).content.decode()
        assert 'data-state="INTERRUPTED"' in html
        assert 'data-field="finished" hidden' not in html

    def test_sse_ends(self, reader, silent_log):
        events = reader.get(url("task_log_events")).content.decode()
        assert events.endswith("\n\n") and "event: end" in events
        assert '"state":"INTERRUPTED"' in events

    def test_a_run_that_wrote_recently_is_still_running(self, reader, settings):
        settings.CELERY_TASKLOG_STALE_AFTER = 60
        make_result(status="STARTED")
        make_log(last_seen=timezone.now() - timedelta(seconds=59))
        task = reader.get(url("task_log_lines")).json()["task"]
        assert (task["state"], task["interrupted"], task["complete"]) == ("STARTED", False, False)


class TestCompleteness:
    """Celery may store the final state before the last lines: the log is not complete yet."""

    def test_final_state_with_an_open_log_is_not_complete(self, reader):
        make_result(status="SUCCESS")
        make_log(messages=["one"])
        assert reader.get(url("task_log_lines")).json()["task"]["complete"] is False
        events = reader.get(url("task_log_events")).content.decode()
        assert "event: end" not in events and '"state":"SUCCESS"' in events

    def test_final_state_with_a_closed_log_is_complete(self, reader):
        make_result(status="SUCCESS")
        make_log(messages=["one"], finished=timezone.now())
        assert reader.get(url("task_log_lines")).json()["task"]["complete"] is True
        assert "event: end" in reader.get(url("task_log_events")).content.decode()

    def test_a_final_result_whose_log_was_never_closed_completes_after_a_grace(self, reader):
        long_ago = timezone.now() - timedelta(seconds=30)
        result = make_result(status="SUCCESS")
        type(result).objects.filter(pk=result.pk).update(date_done=long_ago)
        make_log(messages=["one"], last_seen=long_ago)
        assert reader.get(url("task_log_lines")).json()["task"]["complete"] is True

    def test_a_task_without_a_log_is_complete_on_its_final_state(self, reader):
        make_result(status="REVOKED")
        task = reader.get(url("task_log_lines")).json()["task"]
        assert (task["state"], task["complete"]) == ("REVOKED", True)


def test_download_filename_is_safe_for_any_id(reader):
    task_id = 'a"b\\c/d ü'
    make_log(task_id, messages=["x"])
    response = reader.get(url("task_log_download", task_id))
    assert response["Content-Disposition"] == 'attachment; filename="tasklog-a_b_c_d__.txt"'


def test_the_page_shows_its_last_lines_in_the_html_escaped(reader):
    make_log(messages=["<b>bold</b> & \x1b[31mred\x1b[0m"])
    html = reader.get(url("task_log")).content.decode()
    assert '<span class="tasklog-message">&lt;b&gt;bold&lt;/b&gt; &amp; red</span>' in html
    assert 'class="tasklog-empty" hidden' in html
