"""Log text in the admin needs the permission to read lines; URL lookups are the declared ones."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.urls import reverse

from tasklog.models import TaskLog, TaskLogLine
from tests.test_admin import LINE_LIST, TASKLOG_LIST, make_log, staff_client

pytestmark = pytest.mark.django_db


class TestLogTextNeedsTheLinePermission:
    def change_page(self, client, log) -> str:
        response = client.get(reverse("admin:tasklog_tasklog_change", args=[log.pk]))
        assert response.status_code == 200
        return response.content.decode()

    def test_view_tasklog_alone_shows_the_task_but_none_of_its_lines(self, client):
        log = make_log("t-1", lines=3)
        TaskLogLine.objects.filter(seq=3).update(message="password=hunter2")
        client = staff_client(client, "view_tasklog")

        html = self.change_page(client, log)
        listing = client.get(TASKLOG_LIST).content.decode()

        assert "tests.tasks.busy" in html  # the task itself is shown
        for page in (html, listing):
            assert "hunter2" not in page and "t-1 line 1" not in page
            assert "Last lines" not in page and LINE_LIST not in page
        assert client.get(LINE_LIST, {"q": "hunter2"}).status_code == 403

    def test_with_the_line_permission_the_last_lines_are_shown(self, client):
        log = make_log("t-1", lines=3)
        client = staff_client(client, "view_tasklog", "view_tasklogline")

        html = self.change_page(client, log)

        assert "Last lines" in html and "t-1 line 3" in html
        assert f'href="{LINE_LIST}?task_id=t-1"' in html


@pytest.mark.abuse
class TestOnlyDeclaredLookups:
    @pytest.mark.parametrize(
        ("changelist", "query"),
        [
            *[
                (LINE_LIST, query)
                for query in (
                    "message__regex=(x%2Bx%2B)%2By",
                    "message__iregex=(x%2Bx%2B)%2By",
                    "message__icontains=secret",
                    "message__contains=secret",
                    "message__startswith=s",
                    "message=secret",
                    "message__in=secret",
                    "seq__gt=0",
                    "timestamp__year=2024",
                    "task_id__regex=.*",
                    "task_id__icontains=t",
                    "level__gte=0",
                    "pk__in=1,2",
                    "stream__exact=stdout&message__regex=.*",
                )
            ],
            *[
                (TASKLOG_LIST, query)
                for query in (
                    "task_name__regex=(x%2Bx%2B)%2By",
                    "worker__icontains=celery",
                    "launched_by__startswith=a",
                    "lines__gt=0",
                    "task_id__regex=.*",
                )
            ],
        ],
    )
    def test_undeclared_lookups_are_refused(self, admin_client, changelist, query):
        make_log("t-1", lines=1)
        TaskLogLine.objects.update(message="x" * 5000 + "secret")

        response = admin_client.get(f"{changelist}?{query}")

        assert response.status_code == 400
        assert "secret" not in response.content.decode()

    @pytest.mark.parametrize("changelist", [TASKLOG_LIST, LINE_LIST])
    def test_every_link_of_the_filter_sidebar_and_date_hierarchy_still_works(
        self, admin_client, changelist
    ):
        log = make_log("t-1", lines=2, truncated=True)
        TaskLogLine.objects.filter(seq=2).update(level=30, stream="log")
        html = admin_client.get(changelist).content.decode()
        links = {unescape(href) for href in re.findall(r'href="(\?[^"]*)"', html)}
        links |= {f"?started__year={log.started.year}", f"?started__month={log.started.month}"}

        assert len(links) > 8
        for link in sorted(links):
            if changelist == LINE_LIST and link.startswith("?started"):
                continue
            response = admin_client.get(changelist + link)
            assert response.status_code == 200, link
            assert "?e=1" not in response.get("Location", ""), link

    def test_declared_filters_and_task_id_still_filter(self, admin_client):
        make_log("t-1", lines=2)
        make_log("t-2", lines=1, truncated=True)

        def line_tasks(query):
            cl = admin_client.get(f"{LINE_LIST}?{query}").context["cl"]
            return sorted({line.task_id for line in cl.result_list})

        def log_tasks(query):
            cl = admin_client.get(f"{TASKLOG_LIST}?{query}").context["cl"]
            return sorted(log.task_id for log in cl.result_list)

        assert line_tasks("task_id=t-1") == ["t-1"]
        assert line_tasks("task_id__exact=t-2") == ["t-2"]
        assert line_tasks("stream__exact=stdout") == ["t-1", "t-2"]
        assert log_tasks("truncated__exact=1") == ["t-2"]
        assert log_tasks("task_name=tests.tasks.busy") == ["t-1", "t-2"]
        assert log_tasks("task_id=t-1") == ["t-1"]

    def test_a_text_search_stays_inside_the_window_whatever_the_url(self, admin_client):
        make_log("t-old", lines=1, ago=timedelta(days=3))
        make_log("t-new", lines=1)

        def found(query):
            response = admin_client.get(f"{LINE_LIST}?q=line&{query}")
            if response.status_code != 200:
                return response.status_code
            return sorted(line.task_id for line in response.context["cl"].result_list)

        assert found("") == ["t-new"]
        assert found("search_in=%F0%9F%92%A5") == ["t-new"]  # unknown: the default window
        assert found("timestamp__gte=2000-01-01T00:00%2B00:00") == ["t-new"]
        assert found("message__icontains=line") == 400
        assert found("task_id__in=t-old,t-new") == 400
        assert TaskLog.objects.count() == 2
