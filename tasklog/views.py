"""The web views: the live task log page, its SSE, JSON and download endpoints, diagnostics.

Every view requires an active staff user with ``tasklog.view_tasklogline`` (logs hold secrets).
Pages send other visitors to the admin login; endpoints answer them with a JSON 403.
A task id that is malformed (see ``urls.TaskIdConverter``) or unknown is a 404: a task is known
when it has a log or a result row, so a task that has not started yet shows an empty log.
"""

from __future__ import annotations

import functools

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    Http404,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from . import sse
from .diagnostics import FAIL, run_diagnostics
from .models import TaskLog, TaskLogLine
from .results import is_final, result_for
from .serializers import line_as_dict, task_as_dict

PERMISSION = "tasklog.view_tasklogline"
PAGE_SIZE = 500
MAX_LIMIT = 5000
MAX_SEQ = 2_147_483_647
DOWNLOAD_PAGE_SIZE = 2000
EVENT_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class BadParameter(ValueError):
    """A query parameter that cannot be used; its message is sent back in a 400."""


def refusal(request, *, endpoint: bool) -> HttpResponse | None:
    """None when the user may read logs, else the response that turns them away."""
    user = request.user
    if user.is_active and user.is_staff:
        if user.has_perm(PERMISSION):
            return None
        if not endpoint:
            raise PermissionDenied
    elif not endpoint:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    return JsonResponse({"error": _("Staff access to task logs is required.")}, status=403)


def log_reader_required(view=None, *, endpoint: bool = False):
    """Admit active staff users with ``tasklog.view_tasklogline``; works on async views too."""
    if view is None:
        return functools.partial(log_reader_required, endpoint=endpoint)
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request, *args, **kwargs):
            response = await sync_to_async(refusal)(request, endpoint=endpoint)
            return response or await view(request, *args, **kwargs)

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        return refusal(request, endpoint=endpoint) or view(request, *args, **kwargs)

    return wrapper


def task_or_404(task_id: str) -> tuple[TaskLog | None, object]:
    """The log and result rows of a task; 404 when it has neither."""
    log, result = TaskLog.objects.find(task_id), result_for(task_id)
    if log is None and result is None:
        raise Http404(_("No task log or result for this task id."))
    return log, result


def seq_param(params, name: str, *, default: int | None = None, maximum: int = MAX_SEQ):
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise BadParameter(
            _("%(name)s must be a whole number from 0 to %(max)s, got %(raw)r.")
            % {"name": name, "max": maximum, "raw": raw[:40]}
        )
    return int(raw)


def limit_param(params) -> int:
    limit = seq_param(params, "limit", default=PAGE_SIZE, maximum=MAX_LIMIT)
    if limit == 0:
        raise BadParameter(_("limit must be at least 1."))
    return limit


@never_cache
@require_safe
@log_reader_required
def task_log(request, task_id: str):
    log, result = task_or_404(task_id)
    task = task_as_dict(log, result)
    lines = TaskLogLine.objects.for_task(task_id).tail(PAGE_SIZE)
    client_data = {
        "task": task,
        "lines": [line_as_dict(line) for line in lines],
        "has_earlier": len(lines) == PAGE_SIZE and lines[0].seq > 1,
        "page_size": PAGE_SIZE,
        "events_url": reverse("tasklog:task_log_events", args=[task_id]),
        "lines_url": reverse("tasklog:task_log_lines", args=[task_id]),
    }
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "title": task["task_name"] or task_id,
        "task": task,
        "log": log,
        "finished": is_final(task["state"]),
        "client_data": client_data,
    }
    return render(request, "tasklog/task_log.html", context)


@never_cache
@require_safe
@log_reader_required(endpoint=True)
async def task_log_events(request, task_id: str):
    """SSE: an async stream under ASGI; under WSGI one pass per request (see docs/web.md)."""
    await sync_to_async(task_or_404)(task_id)
    try:
        after = seq_param(request.headers, "Last-Event-ID")
        if after is None:
            after = seq_param(request.GET, "after", default=0)
    except BadParameter as error:
        return JsonResponse({"error": str(error)}, status=400)
    if isinstance(request, ASGIRequest):
        response = StreamingHttpResponse(
            sse.follow_task(task_id, after), content_type="text/event-stream"
        )
    else:
        response = HttpResponse(
            await sse.one_pass(task_id, after), content_type="text/event-stream"
        )
    for header, value in EVENT_STREAM_HEADERS.items():
        response[header] = value
    return response


@never_cache
@require_safe
@log_reader_required(endpoint=True)
def task_log_lines(request, task_id: str):
    """JSON: lines after ``after`` (paging forwards) or, given ``before``, the page before it."""
    log, result = task_or_404(task_id)
    try:
        after = seq_param(request.GET, "after", default=0)
        before = seq_param(request.GET, "before")
        limit = limit_param(request.GET)
    except BadParameter as error:
        return JsonResponse({"error": str(error)}, status=400)
    lines = TaskLogLine.objects.for_task(task_id).after(after)
    page = lines.head(limit) if before is None else lines.before(before).tail(limit)
    return JsonResponse(
        {
            "task": task_as_dict(log, result),
            "lines": [line_as_dict(line) for line in page],
            "next_after": page[-1].seq if page else after,
            "next_before": page[0].seq if before is not None and len(page) == limit else None,
        }
    )


def text_page(task_id: str, after: int) -> tuple[str, int | None]:
    """The text of the lines after ``after`` (one page) and the last seq in it."""
    lines = TaskLogLine.objects.for_task(task_id).after(after).head(DOWNLOAD_PAGE_SIZE)
    return "".join(text_line(line) for line in lines), lines[-1].seq if lines else None


def text_line(line) -> str:
    """``<timestamp> <stream>[:<level>] <message>``, one line of the download."""
    label = f"{line.stream}:{line.level_name}" if line.level is not None else line.stream
    return f"{line.timestamp.isoformat()} {label} {line.message}\n"


def text_pages(task_id: str):
    after = 0
    while after is not None:
        text, after = text_page(task_id, after)
        yield text


async def text_pages_async(task_id: str):
    after = 0
    while after is not None:
        text, after = await sync_to_async(text_page)(task_id, after)
        yield text


@never_cache
@require_safe
@log_reader_required(endpoint=True)
def task_log_download(request, task_id: str):
    """The whole log as plain text, streamed a page at a time (never built in memory)."""
    task_or_404(task_id)
    pages = text_pages_async if isinstance(request, ASGIRequest) else text_pages
    response = StreamingHttpResponse(pages(task_id), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="tasklog-{task_id}.txt"'
    return response


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@log_reader_required
def diagnostic(request):
    """The ``tasklog_diagnose`` checks; the round trip (it sends a task) only on POST."""
    probe = request.method == "POST"
    checks = run_diagnostics(probe=probe)
    context = {
        **admin.site.each_context(request),
        "title": _("Task log diagnostics"),
        "checks": checks,
        "probed": probe,
        "failed": any(check.status == FAIL for check in checks),
    }
    return render(request, "tasklog/diagnostic.html", context)
