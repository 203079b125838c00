"""The web views: the live task log page, its SSE, JSON and download endpoints, diagnostics.

Every view requires an active staff user with ``tasklog.view_tasklogline`` (logs hold secrets).
Pages send other visitors to the admin login; endpoints answer them with a JSON 403. A task id
whose URL segment does not decode (see ``urls.TaskIdConverter``) or that is unknown is a 404: a
task is known when it has a log or a result row, so a task that has not started yet shows an
empty log. A bad query parameter or header is a 400. The GET-only views are exempt from CSRF
(they change nothing), so any other method is a 405, not a CSRF 403.
"""

from __future__ import annotations

import functools
import re

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, DataError
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
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from . import search, sections, sse
from .diagnostics import FAIL, run_diagnostics
from .models import TaskLog, TaskLogLine
from .pooled import in_pool
from .results import result_for
from .serializers import line_as_dict, line_as_text, task_as_dict

PERMISSION = "tasklog.view_tasklogline"
PAGE_SIZE = 500
MAX_LIMIT = 5000
MAX_SEQ = 2_147_483_647
MAX_DIGITS = len(str(MAX_SEQ))
DOWNLOAD_PAGE_SIZE = 2000
CONTEXT = 10
MATCH_COUNT_LIMIT = 10_000
FLAG_VALUES = {"": False, "0": False, "false": False, "1": True, "true": True}
EVENT_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# What tasklog.js removes too: CSI (colours, cursor moves), OSC (titles, links), lone ESCs.
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b")


class BadParameter(ValueError):
    """A query parameter that cannot be used; its message is sent back in a 400."""


def refusal(request, *, endpoint: bool) -> HttpResponse | None:
    """None when the user may read logs, else the response that turns them away.

    The one access policy of every view. It reads the session and the user, so async views run
    it on the shared pool (``in_pool``), never in the request's thread.
    """
    user = request.user
    if user.is_active and user.is_staff:
        if user.has_perm(PERMISSION):
            return None
        message = _(
            "Reading task logs needs the permission %(permission)s (“Can view task log line”), "
            "which your account does not have."
        ) % {"permission": PERMISSION}
    elif not endpoint:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    else:
        message = _("Staff access to task logs is required.")
    if endpoint:
        return JsonResponse({"error": message}, status=403)
    context = {**admin.site.each_context(request), "title": _("Access denied"), "message": message}
    return render(request, "tasklog/forbidden.html", context, status=403)


def database_work(request, function):
    """``function`` awaitable from an async view: on the shared pool under ASGI (see ``pooled``),
    in the request's own thread under WSGI, whose end hands its connection back."""
    return in_pool(function) if isinstance(request, ASGIRequest) else sync_to_async(function)


def log_reader_required(view=None, *, endpoint: bool = False):
    """Admit active staff users with ``tasklog.view_tasklogline``; works on async views too."""
    if view is None:
        return functools.partial(log_reader_required, endpoint=endpoint)
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request, *args, **kwargs):
            response = await database_work(request, refusal)(request, endpoint=endpoint)
            return response or await view(request, *args, **kwargs)

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        return refusal(request, endpoint=endpoint) or view(request, *args, **kwargs)

    return wrapper


def reader_view(view=None, *, endpoint: bool = False):
    """A GET-only view for log readers: never cached, exempt from CSRF (so a POST is a 405)."""
    if view is None:
        return functools.partial(reader_view, endpoint=endpoint)
    return csrf_exempt(never_cache(require_safe(log_reader_required(view, endpoint=endpoint))))


def task_or_404(task_id: str) -> tuple[TaskLog | None, object]:
    """The log and result rows of a task; 404 when it has neither."""
    log, result = TaskLog.objects.find(task_id), result_for(task_id)
    if log is None and result is None:
        raise Http404(_("No task log or result for this task id."))
    return log, result


def seq_param(params, name: str, *, default: int | None = None, maximum: int = MAX_SEQ):
    """A whole number from 0 to ``maximum`` (ASCII digits only); ``BadParameter`` otherwise."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS) or int(raw) > maximum:
        raise BadParameter(
            _("%(name)s must be a whole number from 0 to %(max)s, got %(raw)s.")
            % {"name": name, "max": maximum, "raw": ascii(raw[:40])}
        )
    return int(raw)


def limit_param(params) -> int:
    limit = seq_param(params, "limit", default=PAGE_SIZE, maximum=MAX_LIMIT)
    if limit == 0:
        raise BadParameter(_("limit must be at least 1."))
    return limit


def bad_request(error: BadParameter) -> JsonResponse:
    return JsonResponse({"error": str(error)}, status=400)


@reader_view
def task_log(request, task_id: str):
    """The page: the last lines are in the HTML itself, so it reads without its script."""
    log, result = task_or_404(task_id)
    task = task_as_dict(log, result)
    lines = TaskLogLine.objects.for_task(task_id).tail(PAGE_SIZE)
    line_dicts = [line_as_dict(line) for line in lines]
    rendered = [
        line | {"clock": clock_time(line), "text": without_escapes(line["message"])}
        for line in line_dicts
    ]
    client_data = {
        "task": task,
        "lines": line_dicts,
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
        "lines": rendered,
        "client_data": client_data,
    }
    return render(request, "tasklog/task_log.html", context)


def without_escapes(message: str) -> str:
    """The message as the page shows it before its script runs: text without escape codes."""
    return ESCAPES.sub("", message)


def clock_time(line: dict) -> str:
    """``HH:MM:SS.mmm`` of a line (UTC), as the server-rendered page shows it."""
    return line["timestamp"][11:23] if line["timestamp"] else ""


def retry_on_database_error(view):
    """A database error before the stream starts answers ``retry:`` too (the browser returns)."""

    @functools.wraps(view)
    async def wrapper(request, *args, **kwargs):
        try:
            return await view(request, *args, **kwargs)
        except DatabaseError:
            return event_stream_response(sse.DATABASE_UNAVAILABLE)

    return wrapper


def event_stream_response(content) -> HttpResponse:
    response_class = HttpResponse if isinstance(content, str) else StreamingHttpResponse
    response = response_class(content, content_type="text/event-stream")
    for header, value in EVENT_STREAM_HEADERS.items():
        response[header] = value
    return response


@retry_on_database_error
@reader_view(endpoint=True)
async def task_log_events(request, task_id: str):
    """SSE: an async stream under ASGI; under WSGI one pass per request (see docs/web.md).

    Under ASGI every database access (the access check above, this lookup, each poll) runs on
    the shared pool and hands its connection back at once: a viewer holds neither.
    """
    try:
        after = seq_param(request.headers, "Last-Event-ID")
        if after is None:
            after = seq_param(request.GET, "after", default=0)
    except BadParameter as error:
        return bad_request(error)
    await database_work(request, task_or_404)(task_id)
    if isinstance(request, ASGIRequest):
        return event_stream_response(sse.follow_task(task_id, after))
    return event_stream_response(await sse.one_pass(task_id, after))


def flag_param(params, name: str) -> bool:
    raw = params.get(name, "")
    if raw not in FLAG_VALUES:
        raise BadParameter(
            _("%(name)s must be 1 or 0, got %(raw)s.") % {"name": name, "raw": ascii(raw[:40])}
        )
    return FLAG_VALUES[raw]


def filter_param(params) -> search.LineFilter:
    """The search (``q``, ``regex``) and the filters (``stream``, ``level``, ``logger``)."""
    try:
        return search.line_filter(
            text=params.get("q", ""),
            regex=flag_param(params, "regex"),
            streams=params.getlist("stream"),
            level=params.get("level"),
            logger=params.get("logger", ""),
        )
    except search.SearchError as error:
        raise BadParameter(str(error)) from None


@reader_view(endpoint=True)
def task_log_lines(request, task_id: str):
    """JSON: lines after ``after`` (paging forwards) or, given ``before``, the page before it;
    given ``around``, that line with ``context`` lines on each side. The search and filters
    (``q``, ``regex``, ``stream``, ``level``, ``logger``) keep only the lines they choose and
    add their count; see docs/web.md for every key.

    ``task.complete`` says whether the log is complete: no more lines will come.
    """
    try:
        after = seq_param(request.GET, "after", default=0)
        before = seq_param(request.GET, "before")
        around = seq_param(request.GET, "around")
        context = seq_param(request.GET, "context", default=CONTEXT, maximum=search.MAX_CONTEXT)
        limit = limit_param(request.GET)
        chosen = filter_param(request.GET)
    except BadParameter as error:
        return bad_request(error)
    log, result = task_or_404(task_id)
    lines = TaskLogLine.objects.for_task(task_id)
    try:
        with search.time_limit(lines.db):
            body = lines_body(lines, chosen, after, before, around, context, limit)
    except search.SearchTooExpensive as error:
        return JsonResponse({"error": str(error), "too_expensive": True}, status=400)
    except DataError as error:  # a pattern the database's own regex dialect refuses
        return bad_request(BadParameter(refused_pattern(error)))
    return JsonResponse({"task": task_as_dict(log, result), **body})


def refused_pattern(error: DataError) -> str:
    """The database's reason for refusing a pattern, in one line."""
    reason = (str(error).strip().splitlines() or [""])[0][:300]
    prefix = "invalid regular expression: "
    if reason.lower().startswith(prefix):
        reason = reason[len(prefix) :]
    return _("Invalid regular expression: %s") % reason


def lines_body(lines, chosen, after, before, around, context, limit) -> dict:
    """The lines part of the JSON answer (see ``task_log_lines``)."""
    if around is not None:
        unsearched = search.LineFilter(
            streams=chosen.streams, level=chosen.level, logger=chosen.logger
        )
        shown = lines.chosen_by(unsearched).marking(chosen.text, regex=chosen.regex)
        page = shown.around(around, context)
        next_before = page[0].seq if page else None
    else:
        shown = lines.chosen_by(chosen).after(after)
        page = shown.head(limit) if before is None else shown.before(before).tail(limit)
        next_before = page[0].seq if before is not None and len(page) == limit else None
    places, open_groups = sections.placed(page, lines)
    starts = [
        (line.seq, line.timestamp)
        for line, place in places
        if place.kind == sections.GROUP_START_KIND
    ]
    summaries = sections.summaries(lines, starts)
    line_dicts = [line_as_dict(line, place) for line, place in places]
    for line in line_dicts:
        if line["seq"] in summaries:
            line["section"] = summaries[line["seq"]]
    body = {
        "lines": line_dicts,
        "next_after": page[-1].seq if page else after,
        "next_before": next_before,
        "open_groups": open_groups,
    }
    if chosen.active:
        if around is None and before is None and after == 0 and len(page) < limit:
            matches, exact = len(page), True  # the page holds every hit: no second read
        else:
            matches, exact = lines.chosen_by(chosen).count_up_to(MATCH_COUNT_LIMIT)
        body |= {"matches": matches, "matches_exact": exact}
    return body


def text_pages(task_id: str, keep_escapes: bool = False):
    """The download's text, one page of lines at a time, escape sequences stripped unless
    ``keep_escapes``."""
    clean = str if keep_escapes else without_escapes
    for page in TaskLogLine.objects.for_task(task_id).pages(page_size=DOWNLOAD_PAGE_SIZE):
        yield "".join(line_as_text(line, clean) for line in page)


async def text_pages_async(task_id: str, keep_escapes: bool = False):
    """``text_pages`` for ASGI: each page read on the shared pool, connection handed back."""
    pages = text_pages(task_id, keep_escapes)
    next_page = in_pool(functools.partial(next, pages, None))
    while (text := await next_page()) is not None:
        yield text


def download_filename(task_id: str) -> str:
    """``tasklog-<id>.txt`` with every character outside ``[A-Za-z0-9_.@+=-]`` as ``_``."""
    return "tasklog-" + re.sub(r"[^A-Za-z0-9_.@+=\-]", "_", task_id) + ".txt"


@reader_view(endpoint=True)
def task_log_download(request, task_id: str):
    """The whole log as plain text, streamed a page at a time (never built in memory);
    escape sequences are stripped unless ``?ansi=keep``."""
    ansi = request.GET.get("ansi", "strip")
    if ansi not in ("strip", "keep"):
        return bad_request(
            BadParameter(_("ansi must be strip or keep, got %s.") % ascii(ansi[:40]))
        )
    task_or_404(task_id)
    pages = text_pages_async if isinstance(request, ASGIRequest) else text_pages
    response = StreamingHttpResponse(
        pages(task_id, ansi == "keep"), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{download_filename(task_id)}"'
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
