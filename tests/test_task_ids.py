"""Any task id Celery accepts is viewable and linkable: page, SSE, JSON, download, admin."""

from __future__ import annotations

import re
from html import unescape
from io import StringIO

import pytest
from django.contrib.admin import AdminSite
from django.core.management import call_command
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django_celery_results.models import TaskResult
from hypothesis import given, settings
from hypothesis import strategies as st

from tasklog.admin import link_task_results_to_logs
from tasklog.models import TaskLog
from tasklog.urls import TaskIdConverter
from tests import harness

pytestmark = pytest.mark.abuse

ID_ZOO = [
    "nightly report/2024 #1",
    "what?now=1&x=%2F",
    "100% done",
    "spaces  and\ttabs",
    "ünïcødé ✓ 日本語 🚀",
    "x" * 255,
    "é" * 255,
    "diagnostic",
    "../../etc/passwd",
    "<script>alert(1)</script>",
]
VIEWS = ("task_log", "task_log_events", "task_log_lines", "task_log_download")
STORABLE_IDS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=255,
)


@given(STORABLE_IDS)
@settings(max_examples=300, deadline=None)
def test_every_storable_id_round_trips_through_its_url(task_id):
    for view in VIEWS:
        url = reverse(f"tasklog:{view}", args=[task_id])
        assert resolve(url).kwargs == {"task_id": task_id}


@pytest.mark.parametrize(
    ("task_id", "url"),
    [
        ("0b6f2a52-6a35-4c39-9a7e-3d4c1f7e9a01", "/tasklog/0b6f2a52-6a35-4c39-9a7e-3d4c1f7e9a01/"),
        ("report:2024@host", "/tasklog/report:2024@host/"),
        ("a/b", "/tasklog/~YS9i/"),
        ("diagnostic", "/tasklog/~ZGlhZ25vc3RpYw/"),
    ],
)
def test_safe_ids_stay_verbatim_and_others_are_encoded(task_id, url):
    assert reverse("tasklog:task_log", args=[task_id]) == url


@pytest.mark.parametrize(
    "segment",
    [
        "~",  # nothing encoded
        "~YS9i=",  # padding: not the canonical form
        "~" + "eA" * 10,  # "xxxxxxxxxx" is a verbatim id: one URL per id
        "~_w",  # not UTF-8
        "~AA",  # NUL, which no database column stores
        "~" + "eH" * 700,  # over 255 characters
        "-leading-dash",
    ],
)
def test_malformed_segments_are_404(segment):
    with pytest.raises(Resolver404):
        resolve(f"/tasklog/{segment}/")


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_no_path_segment_breaks_the_resolver(segment):
    try:
        match = resolve(f"/tasklog/{segment}/lines/")
    except Resolver404:
        return
    assert TaskIdConverter().to_url(match.kwargs["task_id"]) == segment


def test_reverse_never_fails_for_long_ids():
    assert reverse("tasklog:task_log", args=["z" * 255]).startswith("/tasklog/zzz")
    with pytest.raises(NoReverseMatch):
        reverse("tasklog:task_log", args=["é" * 1000])


def hrefs(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="(/tasklog/[^"]+)"', html)]


@pytest.fixture
def results_admin_with_log_links(monkeypatch):
    """The admin's TaskResult list with the log column, as ``link_task_results_to_logs`` makes it.

    The admin's URLs are bound to the ModelAdmin instance registered when they were built (another
    test may have registered a new one since), so that instance takes the linked class, for this
    test only.
    """
    changelist = reverse("admin:django_celery_results_taskresult_changelist")
    registered = resolve(changelist).func.model_admin
    scratch = AdminSite()
    scratch.register(TaskResult, type(registered))
    link_task_results_to_logs(scratch)
    monkeypatch.setattr(registered, "__class__", type(scratch._registry[TaskResult]))


@pytest.mark.integration
def test_id_zoo_end_to_end(worker_factory, admin_client, results_admin_with_log_links):
    from tests.tasks import print_numbered

    worker = worker_factory()
    for task_id in ID_ZOO:
        print_numbered.apply_async(("zoo", 3), task_id=task_id)
    for task_id in ID_ZOO:
        harness.wait_for_task_result(task_id, worker=worker)

    logs = admin_client.get(reverse("admin:tasklog_tasklog_changelist"))
    lines = admin_client.get(reverse("admin:tasklog_tasklogline_changelist"))
    results = admin_client.get(reverse("admin:django_celery_results_taskresult_changelist"))
    assert (logs.status_code, lines.status_code, results.status_code) == (200, 200, 200)
    page_urls = {reverse("tasklog:task_log", args=[task_id]) for task_id in ID_ZOO}
    for changelist in (logs, lines, results):
        assert page_urls <= set(hrefs(changelist.content.decode()))

    for task_id in ID_ZOO:
        log = TaskLog.objects.get(task_id=task_id)
        change = admin_client.get(reverse("admin:tasklog_tasklog_change", args=[log.pk]))
        assert change.status_code == 200
        assert reverse("tasklog:task_log", args=[task_id]) in hrefs(change.content.decode())
        assert_readable_everywhere(admin_client, task_id)


def assert_readable_everywhere(client, task_id: str) -> None:
    page = client.get(reverse("tasklog:task_log", args=[task_id]))
    assert page.status_code == 200
    assert "zoo 1 out" in page.content.decode()
    data = client.get(reverse("tasklog:task_log_lines", args=[task_id])).json()
    assert (data["task"]["task_id"], data["task"]["state"]) == (task_id, "SUCCESS")
    assert [line["message"] for line in data["lines"]] == [
        "zoo 1 out",
        "zoo 2 log",
        "zoo 3 err",
    ]
    events = client.get(reverse("tasklog:task_log_events", args=[task_id])).content.decode()
    assert events.count("event: line") == 3 and "event: end" in events
    download = client.get(reverse("tasklog:task_log_download", args=[task_id]))
    assert download.status_code == 200
    assert re.fullmatch(
        r'attachment; filename="tasklog-[A-Za-z0-9_.@+=-]+\.txt"', download["Content-Disposition"]
    )
    assert b"".join(download.streaming_content).decode().count("\n") == 3

    out = StringIO()
    call_command("tasklog_show", task_id, "--format", "json", stdout=out)
    assert '"zoo 3 err"' in out.getvalue()
    err = StringIO()
    call_command("tasklog_follow", task_id, stdout=StringIO(), stderr=err)
    assert err.getvalue().endswith("ended: SUCCESS.\n")
    assert TaskResult.objects.get(task_id=task_id).status == "SUCCESS"
