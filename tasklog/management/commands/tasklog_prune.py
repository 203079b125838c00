"""``manage.py tasklog_prune``: close dead workers' runs; delete old logs, or given tasks' logs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from tasklog import archive as archive_module
from tasklog.conf import settings
from tasklog.management.arguments import add_database_argument, batch_size, days
from tasklog.models import TaskLog
from tasklog.pruning import (
    close_dead_runs,
    close_never_started,
    create_partitions_ahead,
    drop_expired_partitions,
)


class Command(BaseCommand):
    help = (
        "Close the runs of workers silent for CELERY_TASKLOG_STALE_AFTER seconds (they died), "
        "archive finished logs (CELERY_TASKLOG_ARCHIVE), then delete task logs in which nothing "
        "was written for --days days (default CELERY_TASKLOG_RETENTION_DAYS), "
        "or the logs of --task-id."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=days, help="Age in days; 0 deletes nothing by age.")
        parser.add_argument("--task-id", action="append", default=[], dest="task_ids")
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        parser.add_argument("--batch-size", type=batch_size, default=10_000)
        add_database_argument(parser)

    def handle(self, *args, days, task_ids, dry_run, batch_size, database, **options):
        self.close_dead_runs(database, dry_run)
        self.close_never_started(database, dry_run)
        if not task_ids:
            self.archive(database, dry_run, batch_size)
        logs = TaskLog.objects.using(database)
        if days is None and not task_ids:
            days = settings.RETENTION_DAYS
        if task_ids:
            logs = logs.for_tasks(task_ids)
        elif not days:
            self.stdout.write("Retention is 0 days: logs are kept forever, nothing to delete.")
            return
        if days:
            for dropped in self.prune_partitions(database, days, dry_run):
                logs = logs.exclude(pk__in=self.logs_in(database, dropped.partition))
            logs = logs.expired(days)
        if dry_run:
            self.stdout.write("Would delete " + self.counts(*logs.count_with_lines()) + ".")
            return
        deleted = self.counts(*logs.delete_with_lines(batch_size))
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted}."))

    def prune_partitions(self, database: str, days: int, dry_run: bool) -> list:
        """Create the coming partitions, then drop the expired ones whole (partitions on)."""
        if not dry_run:
            for name in create_partitions_ahead(database):
                self.stdout.write(f"Created partition {name}.")
        verb = "Would drop" if dry_run else "Dropped"
        dropped = drop_expired_partitions(days, database, dry_run=dry_run)
        for done in dropped:
            counts = self.counts(done.logs, done.lines)
            self.stdout.write(f"{verb} partition {done.partition.name} ({counts}).")
        return dropped

    def logs_in(self, database: str, partition):
        """The logs of a partition: counted with it, not again with the row-by-row delete."""
        logs = TaskLog.objects.using(database)
        return logs.first_recorded_between(partition.start, partition.end).values("pk")

    def close_dead_runs(self, database: str, dry_run: bool) -> None:
        closed = close_dead_runs(database, dry_run=dry_run)
        why = f"silent for more than {settings.STALE_AFTER} s: the worker died"
        self.report_closed(closed, f"run{pluralize(closed)} as interrupted ({why})", dry_run)

    def close_never_started(self, database: str, dry_run: bool) -> None:
        closed = close_never_started(database, dry_run=dry_run)
        why = f"queued for more than {settings.QUEUE_TIMEOUT} s: no worker took them"
        self.report_closed(closed, f"task{pluralize(closed)} that never started ({why})", dry_run)

    def archive(self, database: str, dry_run: bool, batch_size: int) -> None:
        if settings.ARCHIVE is not None:
            archive_due_logs(self, database, dry_run, batch_size)

    def report_closed(self, closed: int, what: str, dry_run: bool) -> None:
        """One line per kind of run the sweep closed; nothing when there was none."""
        if closed:
            self.stdout.write(f"{'Would close' if dry_run else 'Closed'} {closed} {what}.")

    def counts(self, logs: int, lines: int) -> str:
        return logs_and_lines(logs, lines)


def logs_and_lines(logs: int, lines: int) -> str:
    return f"{logs} task log{pluralize(logs)} and {lines} line{pluralize(lines)}"


def archive_due_logs(
    command: BaseCommand, database: str, dry_run: bool, batch_size: int, limit: int | None = None
) -> None:
    """Archive the finished logs due (CELERY_TASKLOG_ARCHIVE), for ``tasklog_prune`` and
    ``tasklog_archive``; a storage that fails stops the command before anything else is
    deleted."""
    if dry_run:
        due = archive_module.due(settings.ARCHIVE.after_days, database).count_with_lines()
        command.stdout.write(f"Would archive {logs_and_lines(*due)}.")
        return
    run = archive_module.archive_due(database, batch_size=batch_size, limit=limit)
    if run.logs:
        command.stdout.write(f"Archived {logs_and_lines(run.logs, run.lines)}.")
    if run.error:
        raise CommandError(f"Archive failed, nothing of that log deleted: {run.error}")
