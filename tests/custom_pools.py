"""Pools of the kind a project writes: subclasses of Celery's pools, in a module whose name says
nothing about threads or greenlets (``celery worker -P custom`` with
``CELERY_CUSTOM_WORKER_POOL=tests.custom_pools:InstrumentedGeventPool``)."""

from __future__ import annotations

from celery.concurrency.gevent import TaskPool as GeventPool
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.thread import TaskPool as ThreadPool


class InstrumentedGeventPool(GeventPool):
    """A gevent pool under another name."""


class InstrumentedThreadPool(ThreadPool):
    """A threads pool under another name."""


class InstrumentedPreforkPool(PreforkPool):
    """A prefork pool under another name."""
