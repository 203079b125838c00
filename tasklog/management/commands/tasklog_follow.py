"""``manage.py tasklog_follow``: print a task's log as it is written, until the task ends."""

from __future__ import annotations

from celery import states
from django.core.management.base import BaseCommand, CommandError

from tasklog import reading
from tasklog.follow import SUCCESSFUL_STATES, FollowTimeout, LogFollower
from tasklog.management.arguments import add_database_argument, count, seconds
from tasklog.models import TaskLog, TaskLogLine
from tasklog.results import QUEUED

EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_INTERRUPTED = 130


class Command(BaseCommand):
    help = (
        "Print a task's log like tail -f until the task ends. Exit status: 0 success, "
        "1 failure (or revoked, interrupted), 2 timeout."
    )

    def add_arguments(self, parser):
        parser.add_argument("task_id", help="Celery task id; the task need not have started.")
        parser.add_argument("--tail", type=count, metavar="N", help="Start with the last N lines.")
        parser.add_argument("--timeout", type=seconds, help="Give up after this many seconds.")
        parser.add_argument("--interval", type=seconds, default=0.2, help="Poll interval (0.2).")
        add_database_argument(parser)

    def handle(self, *args, task_id, tail, timeout, interval, database, **options):
        after = 0
        if tail is not None:
            lines = TaskLogLine.objects.using(database).for_task(task_id)
            after = reading.seq_before_tail(lines, tail)
        follower = LogFollower(task_id, after=after, poll_interval=interval, using=database)
        try:
            state = follower.current_state()[0]
            if state == states.PENDING:
                self.stderr.write(f"Waiting for task {task_id} to start...")
            elif state == QUEUED:
                log = TaskLog.objects.using(database).find(task_id)
                self.stderr.write(f"Task {task_id}: {reading.waiting_note(log)}")
            for page in follower.pages(timeout):
                for line in page:
                    self.stdout.write(
                        reading.plain_line(line), reading.line_style(line, self.style)
                    )
        except FollowTimeout as timed_out:
            raise CommandError(
                f"Timed out after {timeout:g} s; task {task_id} is {timed_out.state}.",
                returncode=EXIT_TIMEOUT,
            ) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted.", returncode=EXIT_INTERRUPTED) from None
        if follower.state not in SUCCESSFUL_STATES:
            raise CommandError(f"Task {task_id} ended: {follower.state}.", returncode=EXIT_FAILED)
        self.stderr.write(f"Task {task_id} ended: {follower.state}.")
