"""``manage.py tasklog_archive``: move the finished logs due to object storage now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tasklog.conf import settings
from tasklog.management.arguments import add_database_argument, batch_size
from tasklog.management.commands.tasklog_prune import archive_due_logs


class Command(BaseCommand):
    help = (
        "Archive the logs finished more than CELERY_TASKLOG_ARCHIVE's after_days days ago to "
        "its storage (what the daily prune does), at most --limit of them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=batch_size, help="Archive at most this many logs.")
        parser.add_argument("--dry-run", action="store_true", help="Count, archive nothing.")
        parser.add_argument("--batch-size", type=batch_size, default=10_000)
        add_database_argument(parser)

    def handle(self, *args, limit, dry_run, batch_size, database, **options):
        if settings.ARCHIVE is None:
            raise CommandError("CELERY_TASKLOG_ARCHIVE is not set: there is nowhere to archive to.")
        archive_due_logs(self, database, dry_run, batch_size, limit)
