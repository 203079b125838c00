"""The TaskLog and TaskLogLine admins, through the test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin import AdminSite
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_celery_results.admin import TaskResultAdmin
from django_celery_results.models import TaskResult

from tasklog.admin import (
    TaskLogAdmin,
    TaskLogLineAdmin,
    TaskResultLogLinkMixin,
    link_task_results_to_logs,
)
from tasklog.models import Stream, TaskLog, TaskLogLine

pytestmark = pytest.mark.django_db

TASKLOG_LIST = reverse("admin:tasklog_tasklog_changelist")
LINE_LIST = reverse("admin:tasklog_tasklogline_changelist")
# On PostgreSQL the paginator first asks pg_class for the table's estimated size.
CATALOGUE_LOOKUP = int(connection.vendor == "postgresql")


def make_log(task_id: str, lines: int = 0, ago: timedelta = timedelta(0), **fields) -> TaskLog:
    started = timezone.now() - ago
    fields.setdefault("finished", started + timedelta(seconds=2))
    fields.setdefault("task_name", "tests.tasks.busy")
    log = TaskLog.objects.create(
        task_id=task_id, started=started, last_seen=started, lines=lines, **fields
    )
    TaskLogLine.objects.bulk_create(
        TaskLogLine(
            task_id=task_id,
            seq=seq,
            timestamp=started,
            stream=Stream.STDOUT,
            message=f"{task_id} line {seq}",
        )
        for seq in range(1, lines + 1)
    )
    return log


def staff_client(client, *codenames: str):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


class TestTaskLogList:
    def test_shows_state_from_the_task_result_and_who_launched(self, admin_client):
        make_log("t-ok", launched_by="alice", launched_from="POST /reports/")
        make_log("t-bad")
        make_log("t-beat", launched_from="celery beat")
        TaskResult.objects.create(task_id="t-ok", status="SUCCESS")
        TaskResult.objects.create(task_id="t-bad", status="FAILURE")

        html = admin_client.get(TASKLOG_LIST).content.decode()

        assert '<td class="field-state">SUCCESS</td>' in html
        assert '<td class="field-state">FAILURE</td>' in html
        assert '<td class="field-state">FINISHED</td>' in html  # no result stored
        assert '<span title="POST /reports/">alice</span>' in html
        assert '<span title="celery beat">celery beat</span>' in html
        assert f'href="{reverse("tasklog:task_log", args=["t-ok"])}"' in html
        assert "3 task logs" in html

    @pytest.mark.parametrize("per_page", [20, 100])
    def test_queries_do_not_grow_with_the_page_size(
        self, admin_client, django_assert_max_num_queries, monkeypatch, per_page
    ):
        for number in range(per_page + 1):
            make_log(f"t-{number}", launched_by="alice")
            TaskResult.objects.create(task_id=f"t-{number}", status="SUCCESS")
        monkeypatch.setattr(TaskLogAdmin, "list_per_page", per_page)

        # session, user, count, page, task results, date hierarchy (2), task names
        with django_assert_max_num_queries(8 + CATALOGUE_LOOKUP):
            response = admin_client.get(TASKLOG_LIST)

        assert response.content.decode().count('<td class="field-state">SUCCESS</td>') == per_page

    def test_state_filter_reads_task_results(self, admin_client):
        make_log("t-ok")
        make_log("t-bad")
        make_log("t-dead", interrupted=True, finished=None)
        TaskResult.objects.create(task_id="t-ok", status="SUCCESS")
        TaskResult.objects.create(task_id="t-bad", status="FAILURE")

        failed = admin_client.get(TASKLOG_LIST, {"state": "FAILURE"}).context["cl"].result_list
        interrupted = admin_client.get(TASKLOG_LIST, {"state": "INTERRUPTED"}).context["cl"]

        assert [log.task_id for log in failed] == ["t-bad"]
        assert [log.task_id for log in interrupted.result_list] == ["t-dead"]

    def test_search_by_task_id_and_name(self, admin_client):
        make_log("abc-123")
        make_log("def-456", task_name="reports.build")

        by_id = admin_client.get(TASKLOG_LIST, {"q": "ABC-123"}).context["cl"].result_list
        by_name = admin_client.get(TASKLOG_LIST, {"q": "reports"}).context["cl"].result_list

        assert [log.task_id for log in by_id] == ["abc-123"]
        assert [log.task_id for log in by_name] == ["def-456"]


class TestTaskLogDetail:
    def test_is_read_only_with_the_last_lines_escaped(self, admin_client):
        log = make_log("t-1", lines=60)
        TaskLogLine.objects.filter(task_id="t-1", seq=60).update(message="<script>x</script>")
        TaskResult.objects.create(task_id="t-1", status="SUCCESS")

        response = admin_client.get(reverse("admin:tasklog_tasklog_change", args=[log.pk]))
        html = response.content.decode()

        assert response.status_code == 200
        assert 'name="_save"' not in html
        assert "t-1 line 11<" in html and "t-1 line 10<" not in html  # the last 50
        assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
        assert '<div class="readonly">SUCCESS</div>' in html
        assert f'href="{LINE_LIST}?task_id=t-1"' in html

    def test_cannot_be_added(self, admin_client):
        assert admin_client.get(reverse("admin:tasklog_tasklog_add")).status_code == 403

    def test_delete_button_deletes_the_lines_too(self, admin_client):
        log = make_log("t-1", lines=5)
        make_log("t-2", lines=3)

        admin_client.post(reverse("admin:tasklog_tasklog_delete", args=[log.pk]), {"post": "yes"})

        assert list(TaskLog.objects.values_list("task_id", flat=True)) == ["t-2"]
        assert set(TaskLogLine.objects.values_list("task_id", flat=True)) == {"t-2"}


class TestTaskLogActions:
    def test_delete_logs_asks_then_deletes_logs_and_lines(self, admin_client):
        first, second, kept = make_log("t-1", 5), make_log("t-2", 3), make_log("t-3", 2)
        selection = {"action": "delete_logs", "_selected_action": [first.pk, second.pk]}

        confirmation = admin_client.post(TASKLOG_LIST, selection)
        assert TaskLog.objects.count() == 3
        assert "Delete the logs of 2 tasks and their 8 stored lines?" in (
            confirmation.content.decode()
        )

        done = admin_client.post(TASKLOG_LIST, {**selection, "post": "yes"}, follow=True)

        assert list(TaskLog.objects.all()) == [kept]
        assert set(TaskLogLine.objects.values_list("task_id", flat=True)) == {"t-3"}
        assert "Deleted 2 task logs and 8 lines." in done.content.decode()

    def test_delete_logs_across_all_pages_keeps_the_filter(self, admin_client):
        make_log("t-1", 2, truncated=True)
        make_log("t-2", 2, truncated=True)
        kept = make_log("t-3", 2)
        one = TaskLog.objects.get(task_id="t-1").pk
        selection = {"action": "delete_logs", "_selected_action": [one], "select_across": "1"}
        url = f"{TASKLOG_LIST}?truncated__exact=1"

        confirmation = admin_client.post(url, selection).content.decode()
        assert 'name="select_across" value="1"' in confirmation
        admin_client.post(url, {**selection, "post": "yes"})

        assert list(TaskLog.objects.all()) == [kept]

    def test_view_only_staff_cannot_delete(self, client):
        log = make_log("t-1", 2)
        client = staff_client(client, "view_tasklog")

        actions = client.get(TASKLOG_LIST).context["action_form"].fields["action"].choices
        client.post(
            TASKLOG_LIST, {"action": "delete_logs", "_selected_action": [log.pk], "post": "yes"}
        )

        assert "delete_logs" not in dict(actions)
        assert TaskLog.objects.count() == 1 and TaskLogLine.objects.count() == 2

    def test_open_live_view_of_one_task(self, admin_client):
        first, second = make_log("t-1"), make_log("t-2")

        one = admin_client.post(
            TASKLOG_LIST, {"action": "open_live_view", "_selected_action": [first.pk]}
        )
        two = admin_client.post(
            TASKLOG_LIST,
            {"action": "open_live_view", "_selected_action": [first.pk, second.pk]},
            follow=True,
        )

        assert one.status_code == 302
        assert one["Location"] == reverse("tasklog:task_log", args=["t-1"])
        assert "Select exactly one task to open its live view." in two.content.decode()


class TestPermissions:
    @pytest.mark.parametrize("url", [TASKLOG_LIST, LINE_LIST])
    def test_staff_without_view_permission_is_refused(self, client, url):
        make_log("t-1", 1)
        assert staff_client(client).get(url).status_code == 403

    def test_staff_without_permissions_sees_no_tasklog_app(self, client):
        index = staff_client(client).get(reverse("admin:index"))
        assert "tasklog" not in index.content.decode()

    def test_lines_cannot_be_added_changed_or_deleted(self, admin_client):
        make_log("t-1", 1)
        line = TaskLogLine.objects.get()

        page = admin_client.get(reverse("admin:tasklog_tasklogline_change", args=[line.pk]))

        assert admin_client.get(reverse("admin:tasklog_tasklogline_add")).status_code == 403
        assert 'name="_save"' not in page.content.decode()
        assert admin_client.get(LINE_LIST).context["action_form"] is None
        url = reverse("admin:tasklog_tasklogline_delete", args=[line.pk])
        assert admin_client.post(url, {"post": "yes"}).status_code == 403


class TestTaskLogLineList:
    def test_lists_lines_newest_first_with_short_messages(self, admin_client):
        make_log("t-old", 1, ago=timedelta(hours=2))
        make_log("t-new", 1)
        TaskLogLine.objects.filter(task_id="t-new").update(message="x" * 500)

        response = admin_client.get(LINE_LIST)
        html = response.content.decode()

        assert [line.task_id for line in response.context["cl"].result_list] == ["t-new", "t-old"]
        assert "x" * 119 + "…" in html and "x" * 121 not in html
        assert f'href="{reverse("tasklog:task_log", args=["t-new"])}"' in html

    @pytest.mark.parametrize("per_page", [20, 100])
    def test_queries_do_not_grow_with_the_page_size(
        self, admin_client, django_assert_max_num_queries, monkeypatch, per_page
    ):
        make_log("t-1", per_page + 1)
        monkeypatch.setattr(TaskLogLineAdmin, "list_per_page", per_page)

        # session, user, count, page
        with django_assert_max_num_queries(4 + CATALOGUE_LOOKUP):
            response = admin_client.get(LINE_LIST)

        assert len(response.context["cl"].result_list) == per_page

    def test_a_task_id_search_shows_all_lines_of_that_task(self, admin_client):
        make_log("t-old", 3, ago=timedelta(days=40))
        make_log("t-new", 1)

        found = admin_client.get(LINE_LIST, {"q": "t-old"}).context["cl"].result_list

        assert sorted(line.seq for line in found) == [1, 2, 3]

    def test_message_search_looks_at_the_last_24_hours_by_default(self, admin_client):
        make_log("t-old", 1, ago=timedelta(days=2))
        make_log("t-new", 1, ago=timedelta(hours=1))

        def found(**params):
            cl = admin_client.get(LINE_LIST, {"q": "line 1", **params}).context["cl"]
            return sorted(line.task_id for line in cl.result_list)

        assert found() == ["t-new"]
        assert found(search_in="1h") == []
        assert found(search_in="7d") == ["t-new", "t-old"]
        assert found(search_in="all") == ["t-new", "t-old"]
        assert found(search_in="bogus") == ["t-new"]
        assert found(task_id="t-old") == ["t-old"]  # one task: searched whole

    def test_filters_by_stream(self, admin_client):
        make_log("t-1", 2)
        TaskLogLine.objects.filter(seq=2).update(stream=Stream.STDERR)

        found = admin_client.get(LINE_LIST, {"stream__exact": "stderr"}).context["cl"].result_list

        assert [line.seq for line in found] == [2]

    def test_search_window_is_explained_in_the_sidebar(self, admin_client):
        html = admin_client.get(LINE_LIST, {"search_in": "7d"}).content.decode()

        assert "search messages in" in html.lower()
        assert '<li class="selected">\n    <a href="?search_in=7d">the last 7 days</a>' in html


class TestTaskResultLogLink:
    @pytest.fixture
    def site(self):
        site = AdminSite()
        site.register(TaskResult, TaskResultAdmin)
        return site

    def test_adds_a_log_column_to_the_registered_admin(self, site, rf):
        link_task_results_to_logs(site)
        link_task_results_to_logs(site)  # twice: still one column
        model_admin = site._registry[TaskResult]
        result = TaskResult.objects.create(task_id="t-1", status="SUCCESS")

        columns = model_admin.get_list_display(rf.get("/"))

        assert isinstance(model_admin, TaskResultAdmin)
        assert columns == (*TaskResultAdmin.list_display, "task_log_link")
        assert model_admin.task_log_link(result) == (
            f'<a href="{reverse("tasklog:task_log", args=["t-1"])}" title="t-1">log</a>'
        )

    def test_registers_the_default_admin_when_none_is(self):
        site = AdminSite()

        link_task_results_to_logs(site)

        assert isinstance(site._registry[TaskResult], TaskResultLogLinkMixin)
        assert isinstance(site._registry[TaskResult], TaskResultAdmin)

    def test_is_optional(self, admin_client):
        changelist = admin_client.get(reverse("admin:django_celery_results_taskresult_changelist"))
        assert "task_log_link" not in changelist.context["cl"].list_display
