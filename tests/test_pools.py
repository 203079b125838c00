"""Pools are named by Celery's alias table, in every form Celery takes them, and descriptor capture
(E006) is refused for each pool whose tasks share a process, whatever its name looks like."""

from __future__ import annotations

import sys

import pytest
from celery.concurrency import ALIASES
from hypothesis import given
from hypothesis import strategies as st

from tasklog.checks import check_fd_capture_pool, worker_errors
from tasklog.pools import configured_pool_name, pool_name, tasks_share_a_process
from tests.custom_pools import (
    InstrumentedGeventPool,
    InstrumentedPreforkPool,
    InstrumentedThreadPool,
)


@pytest.mark.parametrize("alias", ["prefork", "solo", "threads", "gevent", "eventlet"])
def test_every_celery_pool_is_named_by_its_alias_in_every_form(alias):
    path = ALIASES[alias]

    assert pool_name(alias) == alias
    assert pool_name(path) == alias
    assert configured_pool_name(path) == alias
    assert configured_pool_name(path.replace(":", ".")) == alias


def test_the_compatibility_alias_processes_is_prefork():
    assert pool_name("processes") == "prefork"
    assert configured_pool_name("processes") == "prefork"


@pytest.mark.parametrize(
    ("pool_class", "alias"),
    [
        (InstrumentedGeventPool, "gevent"),
        (InstrumentedThreadPool, "threads"),
        (InstrumentedPreforkPool, "prefork"),
    ],
)
def test_a_subclass_is_named_by_the_celery_pool_it_derives_from(pool_class, alias):
    path = f"{pool_class.__module__}:{pool_class.__name__}"

    assert pool_name(pool_class) == alias
    assert configured_pool_name(path) == alias


def test_a_name_from_a_remote_worker_is_never_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "tests.custom_pools")

    assert pool_name("tests.custom_pools:InstrumentedGeventPool") == (
        "tests.custom_pools:InstrumentedGeventPool"
    )
    assert "tests.custom_pools" not in sys.modules


def test_only_threads_and_green_pools_share_a_process():
    shared = {alias for alias in ALIASES if tasks_share_a_process(configured_pool_name(alias))}

    assert shared == {"threads", "gevent", "eventlet"}


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("celery.concurrency.thread:TaskPool", "threads"),
        ("celery.concurrency.gevent.TaskPool", "gevent"),
        ("tests.custom_pools:InstrumentedGeventPool", "gevent"),
        (InstrumentedThreadPool, "threads"),
    ],
)
def test_the_system_check_knows_a_pool_setting_given_as_a_path_or_class(settings, setting, named):
    settings.CELERY_TASKLOG_CAPTURE_FD = True
    settings.CELERY_WORKER_POOL = setting

    [error] = check_fd_capture_pool()

    assert error.id == "tasklog.E006"
    assert f"CAPTURE_FD=True cannot be used with the {named!r} pool" in error.msg


@pytest.mark.django_db(transaction=True)  # a starting worker looks at the lines table
def test_a_worker_with_a_subclass_of_prefork_may_capture_descriptors(settings):
    settings.CELERY_TASKLOG_CAPTURE_FD = True

    assert worker_errors(InstrumentedPreforkPool) == []
    assert [error.id for error in worker_errors(InstrumentedGeventPool)] == ["tasklog.E006"]


@pytest.mark.django_db(transaction=True)  # a starting worker looks at the lines table
def test_the_worker_check_and_the_system_check_agree(settings):
    settings.CELERY_TASKLOG_CAPTURE_FD = True
    settings.CELERY_TASKLOG_MAX_LINES = "abc"
    settings.CELERY_WORKER_POOL = "eventlet"

    system_check = [error.id for error in check_fd_capture_pool()]
    assert [error.id for error in worker_errors("eventlet")] == ["tasklog.E002", *system_check]


@pytest.mark.abuse
@pytest.mark.parametrize(
    "setting",
    [
        "x" * 100_000,
        "пул-🚀",
        "threads\x00",
        "os:system",
        "__import__('os').system('touch /tmp/tasklog-pwned')",
        "../../etc/passwd",
        ":",
        ".",
        "tests.custom_pools:Missing",
        "threads; rm -rf /",
        42,
        ["threads"],
        None,
    ],
)
def test_a_malformed_pool_setting_is_left_to_celery(settings, setting):
    settings.CELERY_TASKLOG_CAPTURE_FD = True
    settings.CELERY_WORKER_POOL = setting

    assert check_fd_capture_pool() == []


@pytest.mark.abuse
@given(st.text(max_size=300))
def test_any_pool_name_is_named_without_error(name):
    assert isinstance(pool_name(name), str)
    assert isinstance(configured_pool_name(name), str)
