"""Database work of async views, on the event loop's shared thread pool, connection handed back.

Django's ``sync_to_async`` runs in the request's own thread by default (``thread_sensitive``),
and a connection opened there lives until the response is closed: a live stream would hold a
thread and a connection for its whole life, and a few dozen viewers would exhaust the
database. Work wrapped here runs on the shared pool instead and gives its connections back
before it returns (as the end of a request does, honouring ``CONN_MAX_AGE`` and connection
pools), so an async view waiting between queries holds neither a thread nor a connection.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def released(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` with the calling thread's connections handed back before and after it."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return call


def in_pool(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """An awaitable ``function`` on the shared pool that keeps no connection (see module doc)."""
    return sync_to_async(released(function), thread_sensitive=False)
