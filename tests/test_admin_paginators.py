"""EstimatedCountPaginator: bounded counts, estimates for large unfiltered tables."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tasklog import paginators
from tasklog.models import TaskLog
from tasklog.paginators import CountKind, EstimatedCountPaginator, estimated_row_count

pytestmark = pytest.mark.django_db

TASKLOG_LIST = reverse("admin:tasklog_tasklog_changelist")


@pytest.fixture
def logs():
    now = timezone.now()
    TaskLog.objects.bulk_create(
        TaskLog(task_id=f"t-{n}", task_name=f"name-{n % 2}", started=now, last_seen=now)
        for n in range(30)
    )
    return TaskLog.objects.order_by("-started")


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "count_limit", 10)


def test_counts_exactly_up_to_the_limit(logs):
    paginator = EstimatedCountPaginator(logs, 5)

    assert (paginator.count, paginator.count_kind) == (30, CountKind.EXACT)


@pytest.mark.usefixtures("small_limit")
def test_stops_counting_at_the_limit(logs, django_assert_num_queries):
    paginator = EstimatedCountPaginator(logs.filter(task_name="name-0"), 5)

    with django_assert_num_queries(1):
        assert (paginator.count, paginator.count_kind) == (10, CountKind.AT_LEAST)
    assert paginator.num_pages == 2


@pytest.mark.usefixtures("small_limit")
def test_unfiltered_large_table_takes_the_estimate(logs, monkeypatch):
    monkeypatch.setattr(paginators, "estimated_row_count", lambda queryset: 1_000_000)

    unfiltered = EstimatedCountPaginator(logs, 5)
    filtered = EstimatedCountPaginator(logs.filter(task_name="name-0"), 5)

    assert (unfiltered.count, unfiltered.count_kind) == (1_000_000, CountKind.ESTIMATED)
    assert (filtered.count, filtered.count_kind) == (10, CountKind.AT_LEAST)


def test_small_estimate_is_replaced_by_an_exact_count(logs, monkeypatch):
    monkeypatch.setattr(paginators, "estimated_row_count", lambda queryset: 7)

    assert EstimatedCountPaginator(logs, 5).count == 30


def test_the_estimate_comes_from_pg_class_on_postgresql_and_is_absent_elsewhere(logs):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE tasklog_tasklog")
        assert estimated_row_count(logs) == 30
    else:
        assert estimated_row_count(logs) is None


@pytest.mark.usefixtures("logs", "small_limit")
def test_changelist_says_when_the_count_is_not_exact(admin_client, monkeypatch):
    monkeypatch.setattr(paginators, "estimated_row_count", lambda queryset: 123_456)

    unfiltered = admin_client.get(TASKLOG_LIST).content.decode()
    filtered = admin_client.get(TASKLOG_LIST, {"task_name": "name-0"}).content.decode()

    assert "about 123,456 task logs" in " ".join(unfiltered.split())
    assert "about 123,456 results" in " ".join(unfiltered.split())
    assert "more than 10 task logs" in " ".join(filtered.split())
