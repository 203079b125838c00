"""``manage.py tasklog_partition``: show, convert to or revert from a partitioned lines table."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tasklog import partitions
from tasklog.conf import settings, shown
from tasklog.management.arguments import add_database_argument


class Command(BaseCommand):
    help = (
        "Show the partitions of the lines table; --convert turns a populated table into one "
        "partitioned by CELERY_TASKLOG_PARTITIONS, --revert back into a plain table. Both copy "
        "every line under an exclusive lock: readers and writers wait until it ends."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--convert", action="store_true", help="Partition the lines table.")
        action.add_argument("--revert", action="store_true", help="Back to a plain table.")
        add_database_argument(parser)

    def handle(self, *args, convert, revert, database, **options):
        if database not in connections:
            raise CommandError(f"Unknown database {shown(database)}.")
        if connections[database].vendor != "postgresql":
            raise CommandError(f"Partitions need PostgreSQL; {database!r} is not.")
        if convert or revert:
            self.rebuild(database, convert)
        self.show(database)

    def rebuild(self, database: str, convert: bool) -> None:
        if convert and settings.PARTITIONS is None:
            raise CommandError('Set CELERY_TASKLOG_PARTITIONS to "day" or "week" first.')
        started = time.monotonic()
        try:
            done = (
                partitions.convert(database, settings.PARTITIONS)
                if convert
                else partitions.revert(database)
            )
        except ValueError as error:
            raise CommandError(f"Nothing done: {error}.") from None
        what = f"partitioned by {settings.PARTITIONS}" if convert else "a plain table again"
        self.stdout.write(
            self.style.SUCCESS(
                f"The lines table is {what}: {done.lines} lines copied in "
                f"{time.monotonic() - started:.1f} s (the table was locked meanwhile)."
            )
        )

    def show(self, database: str) -> None:
        if not partitions.is_partitioned(database):
            self.stdout.write("The lines table is not partitioned.")
            return
        for partition in partitions.partitions(database):
            self.stdout.write(f"{partition.name}  {partition.start} to {partition.end}")
        self.stdout.write(f"{partitions.default_name()}  (lines whose partition was missing)")
