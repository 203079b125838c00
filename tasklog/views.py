"""The web views: the live task log page, its SSE, JSON and download endpoints, diagnostics.

Who may read a task's log is the access policy's answer (``access.can_read``, see
docs/access.md), asked with the task's log by ``refusal``; a share link (``?share=``) opens one
task for anyone, a bearer token reads as its user on the endpoints only. Diagnostics stay
staff-only. Pages send anonymous visitors to the admin login; endpoints answer with a JSON
403 (401 for a bad token). Refused requests never learn whether a task exists; for a reader a
task id whose URL segment does not decode (see ``urls.TaskIdConverter``) or that is unknown is
a 404: a task is known when it has a log (a captured task from its publication, see
``queued``) or a result row. A bad query parameter or header is a 400. The GET-only views are exempt
from CSRF (they change nothing), so any other method is a 405, not a CSRF 403.
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
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from . import access, search, sections, shares, sse, tokens
from .archive import ArchiveError
from .diagnostics import FAIL, run_diagnostics
from .live import PAGE_SIZE, component_context, without_escapes
from .models import TaskLog, TaskLogLine
from .pooled import in_pool
from .results import result_for
from .serializers import line_as_dict, line_as_text, task_as_dict

MAX_LIMIT = 5000
MAX_SEQ = 2_147_483_647
MAX_DIGITS = len(str(MAX_SEQ))
DOWNLOAD_PAGE_SIZE = 2000
CONTEXT = 10
MATCH_COUNT_LIMIT = 10_000
FLAG_VALUES = {"": False, "0": False, "false": False, "1": True, "true": True}
EVENT_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


NOT_READABLE = _lazy("You may not read this task's log, or there is no such task.")


class BadParameter(ValueError):
    """A query parameter that cannot be used; its message is sent back in a 400."""


def refusal(request, task_id: str, *, endpoint: bool) -> HttpResponse | None:
    """None when this request may read the task's log, else the response that turns it away.

    Every task view asks this, and it asks the access policy (``access.can_read``) with the
    task's log, read first. A bearer token (endpoints only) reads as its user within its scope;
    a valid share link opens its own task for anyone. Refusals read the same whether the task
    exists or not. It reads the session, the token and the log, so async views run it on the
    shared pool (``in_pool``), never in the request's thread.
    """
    log = TaskLog.objects.find(task_id)
    key = tokens.bearer_key(request.headers.get("Authorization"))
    if key is not None:
        return token_refusal(request, key, task_id, log, endpoint=endpoint)
    share = request.GET.get(shares.QUERY_PARAMETER)
    if share is not None and shares.admits(share, log):
        return None
    if access.can_read(request.user, log):
        return None
    if share is not None:
        return refused(request, _("This share link is invalid or has expired."), endpoint=endpoint)
    return policy_refusal(request, request.user, endpoint=endpoint)


def token_refusal(request, key: str, task_id: str, log, *, endpoint: bool) -> HttpResponse | None:
    """The answer to a request that carries ``Authorization: Bearer``: None when it may read."""
    if not endpoint:
        message = _("API tokens are not accepted on pages, only on the events, lines and download.")
        return refused(request, message, endpoint=False, status=401)
    token = tokens.active_token(key)
    if token is None:
        message = _("The token is unknown, expired or revoked.")
        response = refused(request, message, endpoint=True, status=401)
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    task_name = log.task_name if log is not None else ""
    if not task_name and token.scope_task_name:
        task_name = getattr(result_for(task_id), "task_name", "") or ""
    if tokens.in_scope(token, task_id, task_name) and access.can_read(token.user, log):
        return None
    return policy_refusal(request, token.user, endpoint=True)


def policy_refusal(request, user, *, endpoint: bool) -> HttpResponse:
    """The answer when the policy says no: the same for a task that exists and one that does not.

    Staff lacking only the permission are told which one; anonymous visitors of a page are sent
    to the admin login.
    """
    if user.is_active and user.is_staff and not user.has_perm(access.PERMISSION):
        message = _(
            "Reading task logs needs the permission %(permission)s (“Can view task log line”), "
            "which your account does not have."
        ) % {"permission": access.PERMISSION}
        return refused(request, message, endpoint=endpoint)
    if not endpoint and not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    return refused(request, NOT_READABLE, endpoint=endpoint)


def refused(request, message: str, *, endpoint: bool, status: int = 403) -> HttpResponse:
    """A JSON error for endpoints, the admin-styled refusal page for pages."""
    if endpoint:
        return JsonResponse({"error": message}, status=status)
    context = {**admin.site.each_context(request), "title": _("Access denied"), "message": message}
    return render(request, "tasklog/forbidden.html", context, status=status)


def staff_refusal(request) -> HttpResponse | None:
    """None for log readers (active staff with the permission), the refusal page for others."""
    if access.is_log_reader(request.user):
        return None
    return policy_refusal(request, request.user, endpoint=False)


def database_work(request, function):
    """``function`` awaitable from an async view: on the shared pool under ASGI (see ``pooled``),
    in the request's own thread under WSGI, whose end hands its connection back."""
    return in_pool(function) if isinstance(request, ASGIRequest) else sync_to_async(function)


def task_reader_required(view=None, *, endpoint: bool = False):
    """Admit requests that may read the task's log (``refusal``); works on async views too."""
    if view is None:
        return functools.partial(task_reader_required, endpoint=endpoint)
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request, task_id, *args, **kwargs):
            response = await database_work(request, refusal)(request, task_id, endpoint=endpoint)
            return response or await view(request, task_id, *args, **kwargs)

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request, task_id, *args, **kwargs):
        response = refusal(request, task_id, endpoint=endpoint)
        return response or view(request, task_id, *args, **kwargs)

    return wrapper


def reader_view(view=None, *, endpoint: bool = False):
    """A GET-only view of one task's log: never cached, exempt from CSRF (so a POST is a 405)."""
    if view is None:
        return functools.partial(reader_view, endpoint=endpoint)
    view = archive_errors_answered(view, endpoint=endpoint)
    return csrf_exempt(never_cache(require_safe(task_reader_required(view, endpoint=endpoint))))


def archive_unreadable(error: ArchiveError, *, endpoint: bool) -> HttpResponse:
    """502 with the reason: the log's archive is missing, truncated or its storage is down."""
    message = _("This log is archived and its archive cannot be read: %s") % error
    if endpoint:
        return JsonResponse({"error": message, "archived": True}, status=502)
    return HttpResponse(message, status=502, content_type="text/plain; charset=utf-8")


def archive_errors_answered(view, *, endpoint: bool):
    """``view``, answering ``archive_unreadable`` instead of a 500; works on async views too."""
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request, *args, **kwargs):
            try:
                return await view(request, *args, **kwargs)
            except ArchiveError as error:
                return archive_unreadable(error, endpoint=endpoint)

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ArchiveError as error:
            return archive_unreadable(error, endpoint=endpoint)

    return wrapper


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
    """The page: the live component (``live.py``) in the admin's frame."""
    log, result = task_or_404(task_id)
    share = request.GET.get(shares.QUERY_PARAMETER)
    shared = share is not None and shares.admits(share, log)
    component = component_context(task_id, log, result, share=share if shared else None)
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "title": component["task"]["task_name"] or task_id,
        "share_url": None if shared or log is None else share_url(request, log),
        **component,
    }
    return render(request, "tasklog/task_log.html", context)


def share_url(request, log: TaskLog) -> str:
    """A new share link to the page (default lifetime), for the reader's "Copy share link"."""
    page = reverse("tasklog:task_log", args=[log.task_id])
    query = urlencode({shares.QUERY_PARAMETER: shares.share_token(log)})
    return request.build_absolute_uri(f"{page}?{query}")


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
        counting = "count" not in request.GET or flag_param(request.GET, "count")
    except BadParameter as error:
        return bad_request(error)
    log, result = task_or_404(task_id)
    lines = TaskLogLine.objects.for_task(task_id, log=log)
    try:
        with search.time_limit(lines.db):
            body = lines_body(lines, chosen, after, before, around, context, limit, counting)
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


def lines_body(lines, chosen, after, before, around, context, limit, counting=True) -> dict:
    """The lines part of the JSON answer (see ``task_log_lines``); ``counting`` False
    (``count=0``) leaves out the match count, which can cost a read of the whole task."""
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
    if chosen.active and counting:
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
    try:
        for page in TaskLogLine.objects.for_task(task_id).pages(page_size=DOWNLOAD_PAGE_SIZE):
            yield "".join(line_as_text(line, clean) for line in page)
    except ArchiveError as error:  # past the headers: said in the text, where it stopped
        yield f"[celery-tasklog] The archive of this log cannot be read further: {error}\n"


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
def diagnostic(request):
    """The ``tasklog_diagnose`` checks (staff only); the round trip (it sends a task) on POST."""
    if response := staff_refusal(request):
        return response
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
