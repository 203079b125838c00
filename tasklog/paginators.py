"""A paginator for admin lists over tables too large to ``COUNT(*)`` on every page load.

Django's paginator counts every row the list could show, which on a table of millions of log
lines costs a scan per page view. ``EstimatedCountPaginator`` never counts more than
``count_limit`` rows: an unfiltered list on PostgreSQL takes the planner's row estimate
(``pg_class.reltuples``, as fresh as the last ``ANALYZE``), anything else is counted exactly up
to the limit and shown as "more than" beyond it.
"""

from __future__ import annotations

import enum

from django.core.paginator import Paginator
from django.db import connections
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext


class CountKind(enum.Enum):
    EXACT = "exact"
    ESTIMATED = "estimated"
    AT_LEAST = "at least"


def estimated_row_count(queryset) -> int | None:
    """PostgreSQL's estimate of the rows in the queryset's table; None elsewhere or unknown.

    A table never analyzed reports -1 (PostgreSQL 14+) or 0: both give None.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(queryset.model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] > 0 else None


class EstimatedCountPaginator(Paginator):
    """Counts at most ``count_limit`` rows; ``count_kind`` tells how far ``count`` is exact.

    Guarantees: the count costs a catalogue lookup and/or one query that reads at most
    ``count_limit + 1`` rows, whatever the page size. Pages past an underestimated count are
    not reachable; pages near the end of an overestimated one may be short or empty.
    """

    count_limit = 10_000

    count_kind = CountKind.EXACT

    @cached_property
    def count(self) -> int:
        if not self.object_list.query.has_filters():
            estimate = estimated_row_count(self.object_list)
            if estimate is not None and estimate > self.count_limit:
                self.count_kind = CountKind.ESTIMATED
                return estimate
        counted = self.object_list.order_by()[: self.count_limit + 1].count()
        if counted > self.count_limit:
            self.count_kind = CountKind.AT_LEAST
            return self.count_limit
        return counted

    @property
    def count_label(self) -> str:
        """The count as a reader should see it: "about 5,000,000", "more than 10,000", "42"."""
        count = number_format(self.count, force_grouping=True)
        if self.count_kind is CountKind.ESTIMATED:
            return gettext("about %(count)s") % {"count": count}
        if self.count_kind is CountKind.AT_LEAST:
            return gettext("more than %(count)s") % {"count": count}
        return count
