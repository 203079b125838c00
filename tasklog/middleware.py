"""``CeleryTaskLogMiddleware``: tasks published while a request is handled name its user and path.

The middleware puts the request's origin in the ``request_origin`` context variable for exactly
the duration of the request; the publish hook in ``origin.py`` copies it into each task message.
Context variables are per thread and per asyncio task, so concurrent requests never see each
other's origin, under WSGI threads and under ASGI alike.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .origin import request_origin
from .pooled import in_pool


def origin_of_request(request, user=None) -> dict:
    """The header value for tasks published by this request: user and ``"<METHOD> <path>"``.

    ``user`` defaults to ``request.user``; an anonymous request (or one without
    ``AuthenticationMiddleware`` before this middleware) gets an empty username.
    """
    if user is None:
        user = getattr(request, "user", None)
    authenticated = user is not None and user.is_authenticated
    return {
        "username": user.get_username() if authenticated else "",
        "user_id": str(user.pk) if authenticated else "",
        "from": f"{request.method} {request.path}",
    }


class CeleryTaskLogMiddleware:
    """Record who publishes tasks during a request. Place it after ``AuthenticationMiddleware``.

    The user is resolved once when the request comes in (it is needed before the view runs, and
    under ASGI it cannot be loaded lazily from the publishing code); the origin is reset when the
    response is returned, even if the view raises.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = request_origin.set(origin_of_request(request))
        try:
            return self.get_response(request)
        finally:
            request_origin.reset(token)

    async def __acall__(self, request):
        # Not ``request.auser()``: that reads the session in the request's own thread, whose
        # connection would stay open as long as the response (a live log's, for half an hour).
        origin = await in_pool(origin_of_request)(request)
        token = request_origin.set(origin)
        try:
            return await self.get_response(request)
        finally:
            request_origin.reset(token)
