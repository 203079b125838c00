"""Read-only admin for task logs and their lines, built to stay fast at millions of rows.

Both lists avoid a full ``COUNT(*)`` per page (``EstimatedCountPaginator``,
``show_full_result_count = False``) and run a fixed number of queries whatever the page size.
The task state is read from django-celery-results' ``TaskResult`` after pagination, in one
query for the page, so the log tables may live in another database. Message text is searched
within one task or a recent time window unless the reader widens it, and is shown only to users
who may read log lines (``tasklog.view_tasklogline``, as on the live page). URL lookups are
limited to the declared filters: ``?message__regex=`` would let any staff user make the database
run an arbitrary regular expression over every line.
"""

from __future__ import annotations

from datetime import timedelta

from celery import states
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.db.models import F, Sum
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .access import PERMISSION as READ_LINES_PERMISSION
from .archive import ArchiveError
from .models import AccessToken, TaskLog, TaskLogLine
from .paginators import EstimatedCountPaginator
from .results import INTERRUPTED, QUEUED, effective_state, results_by_task_id
from .tokens import revoke_tokens, scope_of, status_of


def live_view_url(task_id: str) -> str:
    return reverse("tasklog:task_log", args=[task_id])


def live_view_link(task_id: str, text=None):
    """A link to the live page; long task ids (UUIDs) are shortened, whole in the tooltip."""
    if text is None:
        text = task_id if len(task_id) <= 12 else f"{task_id[:8]}…"
    return format_html('<a href="{}" title="{}">{}</a>', live_view_url(task_id), task_id, text)


def format_duration(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    return str(timedelta(seconds=round(seconds)))


def attach_task_results(logs) -> None:
    """Set ``task_result`` (a ``TaskResult`` or None) on each log, in one query."""
    results = results_by_task_id(log.task_id for log in logs)
    for log in logs:
        log.task_result = results.get(log.task_id)


class ReadOnlyLogAdmin(admin.ModelAdmin):
    """What both log admins share: nothing can be added or edited; no full counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):  # Django 5.0+: facet counts would scan the whole table.
        show_facets = admin.ShowFacets.NEVER
    allowed_lookups: frozenset[str] = frozenset()
    """The URL lookups the list takes: its filters' parameters and ``task_id``."""

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        """Only ``allowed_lookups``; Django's default admits any lookup on a local field."""
        return lookup in self.allowed_lookups

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class StateFilter(admin.SimpleListFilter):
    """Filter logs by the state of their ``TaskResult``.

    The task ids come from the result table first (a second database is fine), at most
    ``result_limit`` of them, the most recently done: the filter stays one bounded query.
    """

    title = _("state")
    parameter_name = "state"
    result_states = (states.STARTED, states.RETRY, states.SUCCESS, states.FAILURE, states.REVOKED)
    result_limit = 10_000

    def lookups(self, request, model_admin):
        ours = [
            (QUEUED, _("QUEUED (waiting for a worker)")),
            (INTERRUPTED, _("INTERRUPTED (the worker died)")),
        ]
        if not apps.is_installed("django_celery_results"):
            return ours
        return [(state, state) for state in self.result_states] + ours

    def queryset(self, request, queryset):
        state = self.value()
        if state == QUEUED:
            return queryset.queued()
        if state == INTERRUPTED:
            return queryset.filter(interrupted=True)
        if state in self.result_states:
            return queryset.filter(task_id__in=self.task_ids_in_state(state))
        return queryset

    def task_ids_in_state(self, state: str) -> list[str]:
        from django_celery_results.models import TaskResult

        done = TaskResult.objects.filter(status=state).order_by("-date_done")
        return list(done.values_list("task_id", flat=True)[: self.result_limit])


class TaskLogChangeList(ChangeList):
    """Attaches the ``TaskResult`` of the page's rows after pagination: one query per page."""

    def get_results(self, request):
        super().get_results(request)
        attach_task_results(self.result_list)


LINE_FIELDS = {"last_lines", "search_lines"}
"""The fields of the TaskLog page that show log text, or lead to it."""


@admin.register(TaskLog)
class TaskLogAdmin(ReadOnlyLogAdmin):
    list_display = (
        "task_id_link",
        "task_name",
        "state",
        "lines",
        "dropped",
        "truncated",
        "queued",
        "started",
        "duration",
        "worker",
        "launched",
    )
    list_display_links = ("task_name",)
    list_filter = (StateFilter, "task_name", "truncated")
    date_hierarchy = "started"
    allowed_lookups = frozenset(
        {
            "task_id",
            "task_id__exact",
            StateFilter.parameter_name,
            "task_name",
            "task_name__isnull",
            "truncated__exact",
            "truncated__isnull",
            "started__year",
            "started__month",
            "started__day",
        }
    )
    search_fields = ("=task_id", "task_name")
    search_help_text = _("Task id (exact) or part of the task name.")
    actions = ["delete_logs", "open_live_view"]
    last_lines_count = 50
    fieldsets = (
        (None, {"fields": ("task_id", "live_view", "task_name", "state", "worker", "attempts")}),
        (
            _("Timing"),
            {
                "fields": (
                    "queued",
                    "queue",
                    "started",
                    "finished",
                    "duration",
                    "last_seen",
                    "interrupted",
                )
            },
        ),
        (
            _("Lines"),
            {
                "fields": (
                    "lines",
                    "dropped",
                    "truncated",
                    "search_lines",
                    "archived",
                    "archive_name",
                )
            },
        ),
        (
            _("Launched by"),
            {"fields": ("launched_by", "launched_by_user_id", "launched_from")},
        ),
        (_("Last lines"), {"fields": ("last_lines",), "classes": ("wide",)}),
    )
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    def get_changelist(self, request, **kwargs):
        return TaskLogChangeList

    def get_fieldsets(self, request, obj=None):
        """Without the permission to read log lines, the page shows no line and no link to them."""
        if request.user.has_perm(READ_LINES_PERMISSION):
            return self.fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in LINE_FIELDS]})
            for name, options in self.fieldsets
            if set(options["fields"]) - LINE_FIELDS
        ]

    def get_object(self, request, object_id, from_field=None):
        log = super().get_object(request, object_id, from_field)
        if log is not None:
            attach_task_results([log])
        return log

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # replaced by delete_logs, which deletes lines too
        return actions

    @admin.display(description=_("task id"), ordering="task_id")
    def task_id_link(self, log):
        return live_view_link(log.task_id)

    @admin.display(description=_("live view"))
    def live_view(self, log):
        return live_view_link(log.task_id, _("Open the live log"))

    @admin.display(description=_("state"))
    def state(self, log) -> str:
        return effective_state(log, log.task_result)

    @admin.display(description=_("duration"), ordering=F("finished") - F("started"))
    def duration(self, log) -> str | None:
        return format_duration(log.duration) if log.duration is not None else None

    @admin.display(description=_("launched by"), ordering="launched_by")
    def launched(self, log):
        return format_html(
            '<span title="{}">{}</span>', log.launched_from, log.launched_by or log.launched_from
        )

    @admin.display(description=_("search lines"))
    def search_lines(self, log):
        url = reverse("admin:tasklog_tasklogline_changelist")
        query = urlencode({"task_id": log.task_id})
        return format_html('<a href="{}?{}">{}</a>', url, query, _("Lines of this task"))

    @admin.display(description=_("last lines"))
    def last_lines(self, log):
        try:
            lines = TaskLogLine.objects.for_task(log.task_id).tail(self.last_lines_count)
        except ArchiveError as error:
            return _("The archive of this log cannot be read: %s") % error
        return render_to_string("admin/tasklog/tasklog/last_lines.html", {"lines": lines})

    def delete_model(self, request, obj):
        TaskLog.objects.filter(pk=obj.pk).delete_with_lines()

    @admin.action(permissions=["delete"], description=_("Delete logs of the selected tasks"))
    def delete_logs(self, request, queryset):
        """Ask for confirmation, then delete the logs and their lines in batches."""
        if request.POST.get("post") == "yes":
            try:
                logs, lines = queryset.delete_with_lines()
            except ArchiveError as error:  # the archived ones stay, named, for another try
                self.message_user(request, str(error), messages.ERROR)
                return None
            self.message_user(
                request,
                ngettext(
                    "Deleted %(logs)d task log and %(lines)d lines.",
                    "Deleted %(logs)d task logs and %(lines)d lines.",
                    logs,
                )
                % {"logs": logs, "lines": lines},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are you sure?"),
            "opts": self.opts,
            "logs": queryset.count(),
            "lines": queryset.aggregate(stored=Sum(F("lines") - F("dropped")))["stored"] or 0,
            "preview": queryset[:10],
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/tasklog/tasklog/delete_logs_confirmation.html", context
        )

    @admin.action(description=_("Open the live view of the selected task"))
    def open_live_view(self, request, queryset):
        logs = list(queryset[:2])
        if len(logs) != 1:
            self.message_user(
                request, _("Select exactly one task to open its live view."), messages.WARNING
            )
            return None
        return HttpResponseRedirect(live_view_url(logs[0].task_id))


class MessageSearchWindowFilter(admin.SimpleListFilter):
    """Where the search box looks for message text. It filters nothing by itself.

    Searching text means reading every line in scope, so the default scope is the last 24 hours;
    a list filtered to one task (``?task_id=...``) searches that whole task instead.
    """

    title = _("search messages in")
    parameter_name = "search_in"
    default = "24h"
    windows = {
        "1h": (_("the last hour"), timedelta(hours=1)),
        "24h": (_("the last 24 hours (default)"), timedelta(hours=24)),
        "7d": (_("the last 7 days"), timedelta(days=7)),
        "all": (_("all lines (slow without a trigram index)"), None),
    }

    @classmethod
    def window(cls, request) -> timedelta | None:
        """The search window chosen in ``request``; None means no limit."""
        choice = request.GET.get(cls.parameter_name, cls.default)
        return cls.windows.get(choice, cls.windows[cls.default])[1]

    def lookups(self, request, model_admin):
        return [(choice, label) for choice, (label, _window) in self.windows.items()]

    def choices(self, changelist):
        current = self.value() if self.value() in self.windows else self.default
        for choice, label in self.lookup_choices:
            yield {
                "selected": choice == current,
                "query_string": changelist.get_query_string({self.parameter_name: choice}),
                "display": label,
            }

    def queryset(self, request, queryset):
        return queryset


@admin.register(TaskLogLine)
class TaskLogLineAdmin(ReadOnlyLogAdmin):
    list_display = ("task_id_link", "seq", "timestamp", "stream", "level", "short_message")
    list_display_links = ("seq",)
    list_filter = ("stream", "level", "timestamp", MessageSearchWindowFilter)
    allowed_lookups = frozenset(
        {
            "task_id",
            "task_id__exact",
            "stream__exact",
            "stream__isnull",
            "level__exact",
            "level__isnull",
            "timestamp__gte",
            "timestamp__lt",
            "timestamp__isnull",
            MessageSearchWindowFilter.parameter_name,
        }
    )
    ordering = ("-timestamp",)
    search_fields = ("=task_id", "message")
    search_help_text = _(
        "A task id shows that task's lines. Other text is searched in the messages of the task "
        "this list is filtered to, else of the window chosen under 'search messages in' "
        "(default: the last 24 hours)."
    )
    fields = ("task_id_link", "seq", "timestamp", "stream", "level", "message")
    readonly_fields = fields
    message_length = 120

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # lines go with their task log, so that seq stays gap-free

    @admin.display(description=_("task id"), ordering="task_id")
    def task_id_link(self, line):
        return live_view_link(line.task_id)

    @admin.display(description=_("message"))
    def short_message(self, line) -> str:
        return Truncator(line.message).chars(self.message_length)

    def get_queryset(self, request):
        """Filtered to a task (``?task_id=``): only its partition of a partitioned table."""
        queryset = super().get_queryset(request)
        task_id = request.GET.get("task_id") or request.GET.get("task_id__exact")
        return queryset.in_partition_of(task_id) if task_id else queryset

    def get_search_results(self, request, queryset, search_term):
        """A task id gives that task's lines; other text searches messages in a bounded scope.

        Never one OR of both: the task id branch would keep the database reading past the
        window. Everything runs on indexes except the text match inside the scope.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        of_task = queryset.for_task(term)
        if of_task.exists():
            return of_task, False
        window = MessageSearchWindowFilter.window(request)
        if window is not None and not {"task_id", "task_id__exact"} & request.GET.keys():
            queryset = queryset.filter(timestamp__gte=timezone.now() - window)
        return queryset.filter(message__icontains=term), False


class TaskResultLogLinkMixin:
    """Adds a "log" column to a ``TaskResult`` admin: a link from each result to its live log.

    Optional: mix it into your own subclass of django-celery-results' ``TaskResultAdmin``, or
    call ``link_task_results_to_logs()`` from one of your ``admin.py`` modules.
    """

    def get_list_display(self, request):
        return (*super().get_list_display(request), "task_log_link")

    @admin.display(description=_("log"))
    def task_log_link(self, result):
        return live_view_link(result.task_id, _("log"))


def link_task_results_to_logs(site: admin.AdminSite = admin.site) -> None:
    """Re-register ``TaskResult`` on ``site`` with its current admin plus the log link.

    Keeps whatever admin class is registered (django-celery-results' own by default) and only
    adds ``TaskResultLogLinkMixin`` in front of it; calling it twice adds nothing more.
    """
    from django_celery_results.admin import TaskResultAdmin
    from django_celery_results.models import TaskResult

    admin_class = TaskResultAdmin
    if site.is_registered(TaskResult):
        admin_class = type(site._registry[TaskResult])
        if issubclass(admin_class, TaskResultLogLinkMixin):
            return
        site.unregister(TaskResult)
    site.register(TaskResult, type(admin_class.__name__, (TaskResultLogLinkMixin, admin_class), {}))


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """API tokens, listed and revoked here; made by ``manage.py tasklog_token create``, which
    shows the key once (it is not stored, so the admin never can)."""

    list_display = ("name", "prefix", "user", "scope", "created", "expires", "last_used", "status")
    list_filter = ("revoked", "expires")
    search_fields = ("name", "prefix")
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "created",
        "expires",
        "revoked",
        "last_used",
        "scope_task_id",
        "scope_task_name",
    )
    exclude = ("key_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("scope"))
    def scope(self, token: AccessToken) -> str:
        return scope_of(token)

    @admin.display(description=_("status"))
    def status(self, token: AccessToken) -> str:
        return status_of(token, timezone.now())

    @admin.action(description=_("Revoke selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = revoke_tokens(queryset)
        self.message_user(
            request, ngettext("%d token revoked.", "%d tokens revoked.", revoked) % revoked
        )
