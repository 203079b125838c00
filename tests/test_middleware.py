"""CeleryTaskLogMiddleware and the publish hook: who published a task travels in its headers."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import iscoroutinefunction
from celery import Celery
from celery.signals import before_task_publish
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpResponse
from django.urls import path, reverse

from tasklog.middleware import CeleryTaskLogMiddleware
from tasklog.models import TaskLog
from tasklog.origin import ORIGIN_HEADER, process_origin, request_origin
from tests import harness
from tests.tasks import print_numbered


def launch_view(request):
    """What a project's view does: start a task and answer with its id."""
    return HttpResponse(print_numbered.delay("launched", 2).id)


urlpatterns = [path("launch/", launch_view, name="launch")]


@pytest.fixture
def published():
    """Headers of every task published during the test, seen after tasklog's hook ran."""
    seen = []

    def record(headers=None, **kwargs):
        seen.append(dict(headers))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


@pytest.fixture
def memory_app():
    app = Celery("test_middleware", broker="memory://", set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def alice():
    return User(pk=7, username="alice")


def run_view(request, view):
    return CeleryTaskLogMiddleware(view)(request)


def test_tasks_published_during_a_request_name_the_user_and_path(rf, alice, memory_app, published):
    request = rf.post("/reports/build/")
    request.user = alice

    def view(request):
        memory_app.send_task("reports.build")
        return HttpResponse()

    run_view(request, view)

    assert published[0][ORIGIN_HEADER] == {
        "username": "alice",
        "user_id": "7",
        "from": "POST /reports/build/",
    }


def test_anonymous_request_has_an_empty_username(rf):
    request = rf.get("/public/")
    request.user = AnonymousUser()
    seen = []

    run_view(request, lambda request: seen.append(request_origin.get()) or HttpResponse())

    assert seen == [{"username": "", "user_id": "", "from": "GET /public/"}]


def test_origin_is_reset_after_the_response_even_when_the_view_raises(rf, alice):
    request = rf.get("/")
    request.user = alice

    def failing_view(request):
        raise RuntimeError("boom")

    run_view(request, lambda request: HttpResponse())
    with pytest.raises(RuntimeError):
        run_view(request, failing_view)

    assert request_origin.get() is None


def test_tasks_published_outside_a_request_name_the_process(memory_app, published):
    memory_app.send_task("reports.build")

    assert published[0][ORIGIN_HEADER] == {"from": process_origin()}


def test_an_origin_set_by_the_caller_is_kept(memory_app, published):
    memory_app.send_task("reports.build", headers={ORIGIN_HEADER: {"from": "my script"}})

    assert published[0][ORIGIN_HEADER] == {"from": "my script"}


def test_no_header_while_capture_is_disabled(memory_app, published, settings):
    settings.CELERY_TASKLOG_ENABLED = False

    memory_app.send_task("reports.build")

    assert ORIGIN_HEADER not in published[0]


def test_middleware_is_async_when_the_handler_is(rf, alice):
    async def view(request):
        return HttpResponse()

    assert iscoroutinefunction(CeleryTaskLogMiddleware(view))
    assert not iscoroutinefunction(CeleryTaskLogMiddleware(lambda request: HttpResponse()))


def async_request(rf, path, user):
    """A request as AuthenticationMiddleware leaves it: ``user`` and ``auser``."""
    request = rf.get(path)

    async def auser():
        return user

    request.user, request.auser = user, auser
    return request


def test_concurrent_async_requests_each_see_their_own_origin(rf):
    """Two requests interleave on one event loop; neither sees the other's user."""
    inside = []
    both_inside = asyncio.Event()
    seen = {}

    async def view(request):
        inside.append(request.path)
        if len(inside) == 2:
            both_inside.set()
        await both_inside.wait()
        seen[request.path] = request_origin.get()["username"]
        return HttpResponse()

    middleware = CeleryTaskLogMiddleware(view)

    async def main():
        await asyncio.gather(
            middleware(async_request(rf, "/a/", User(pk=1, username="alice"))),
            middleware(async_request(rf, "/b/", User(pk=2, username="bob"))),
        )
        return request_origin.get()

    assert asyncio.run(main()) is None
    assert seen == {"/a/": "alice", "/b/": "bob"}


def test_async_request_without_auser_loads_the_user_in_a_thread(rf, alice):
    request = rf.get("/old-django/")
    request.user = alice  # Django < 5.0 sets no request.auser
    seen = []

    async def view(request):
        seen.append(request_origin.get())
        return HttpResponse()

    asyncio.run(CeleryTaskLogMiddleware(view)(request))

    assert seen == [{"username": "alice", "user_id": "7", "from": "GET /old-django/"}]


@pytest.mark.integration
@pytest.mark.urls(__name__)
def test_a_worker_stores_who_launched_the_task_from_a_view(worker_factory, client, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tasklog.middleware.CeleryTaskLogMiddleware"]
    worker = worker_factory()
    alice = User.objects.create_user("alice", password="pw")
    client.force_login(alice)

    task_id = client.post(reverse("launch")).content.decode()
    outside_id = print_numbered.delay("outside", 1).id

    harness.wait_for_task_result(task_id, worker=worker)
    harness.wait_for_task_result(outside_id, worker=worker)
    launched = TaskLog.objects.get(task_id=task_id)
    outside = TaskLog.objects.get(task_id=outside_id)
    assert (launched.launched_by, launched.launched_by_user_id, launched.launched_from) == (
        "alice",
        str(alice.pk),
        "POST /launch/",
    )
    assert (outside.launched_by, outside.launched_from) == ("", process_origin())
