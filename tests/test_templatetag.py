"""``{% tasklog_live %}`` rendered by Django: the component for readers, a refusal for others."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from tasklog.models import TaskLog
from tests.logs import TASK_ID, make_log, make_user

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"
REFUSAL = "You may not read the log of this task."


def render(task_id, user, *, tags: int = 1) -> str:
    request = RequestFactory().get("/")
    request.user = user
    source = "{% load tasklog %}" + "{% tasklog_live task_id %}" * tags
    return Template(source).render(Context({"request": request, "task_id": task_id}))


def configs(html: str) -> list[dict]:
    """The JSON config of every component on the page."""
    marker = '<script type="application/json">'
    parts = html.split(marker)[1:]
    return [json.loads(part[: part.index("</script>")]) for part in parts]


def test_a_reader_gets_the_last_lines_rendered_and_a_config_per_component():
    make_log(messages=["first", XSS])
    html = render(TASK_ID, make_user("reader"), tags=2)

    assert html.count("data-tasklog ") == 2
    assert ' id="' not in html  # several on one page: no global ids
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert XSS not in html
    [first, second] = configs(html)
    assert first == second
    assert [line["message"] for line in first["lines"]] == ["first", XSS]
    assert first["events_url"] == f"/tasklog/{TASK_ID}/events/"
    assert html.count('src="/static/tasklog/tasklog.js"') == 2  # the script runs once (guard)
    # the renderer tasklog.js takes its ANSI colours and links from, loaded before it
    assert html.count('src="/static/tasklog/ansi.js"') == 2
    assert html.index("/static/tasklog/ansi.js") < html.index("/static/tasklog/tasklog.js")


@pytest.mark.parametrize(
    "user",
    [
        pytest.param(lambda: AnonymousUser(), id="anonymous"),
        pytest.param(lambda: make_user("staff", can_read_logs=False), id="no-permission"),
        pytest.param(lambda: make_user("outsider", staff=False), id="not-staff"),
    ],
)
def test_others_get_a_short_refusal_and_never_a_line(user):
    make_log(messages=["secret line"])
    visitor = user()
    refused_known, refused_unknown = render(TASK_ID, visitor), render("no-such-task", visitor)

    for html in (refused_known, refused_unknown):
        assert REFUSAL in html
        assert "secret line" not in html and "data-tasklog " not in html
    assert refused_known.replace(TASK_ID, "") == refused_unknown.replace("no-such-task", "")


def test_a_task_not_known_yet_renders_a_pending_component_that_waits_for_it():
    html = render("not-published-yet", make_user("reader"))

    [config] = configs(html)
    assert (config["task"]["state"], config["task"]["task_id"]) == ("PENDING", "not-published-yet")
    assert config["lines"] == []


def test_a_page_without_a_request_or_its_user_is_refused():
    make_log(messages=["secret line"])
    template = Template("{% load tasklog %}{% tasklog_live id %}")
    without_user = RequestFactory().get("/")

    for context in ({"id": TASK_ID}, {"id": TASK_ID, "request": without_user}):
        html = template.render(Context(context))
        assert REFUSAL in html and "secret line" not in html


@pytest.mark.abuse
@pytest.mark.parametrize(
    "task_id",
    ["", "x" * 256, "x" * 100_000, "nul\x00id"],
    ids=["empty", "too-long", "huge", "nul"],
)
def test_impossible_task_ids_are_refused_without_a_query(task_id, django_assert_num_queries):
    user = AnonymousUser()  # the access policy is not asked either

    with django_assert_num_queries(0):
        html = render(task_id, user)

    assert REFUSAL in html


@pytest.mark.abuse
@pytest.mark.parametrize(
    "task_id",
    [XSS, '"><img src=x onerror=alert(1)>', "é/ü?#%20 \u202e", "../../admin/", 12345],
    ids=["script", "attribute", "unicode", "path", "not-a-string"],
)
def test_hostile_task_ids_are_escaped_everywhere(task_id):
    TaskLog.objects.all().delete()
    make_log(str(task_id), messages=[f"line of {task_id}"])

    html = render(task_id, make_user("reader"))

    [config] = configs(html)
    assert config["task"]["task_id"] == str(task_id)
    assert [line["message"] for line in config["lines"]] == [f"line of {task_id}"]
    assert "<img" not in html and "<script>alert" not in html
    assert config["events_url"].startswith("/tasklog/") and "/../" not in config["events_url"]
