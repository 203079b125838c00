"""``manage.py tasklog_follow``: print a task's log as it is written, until the task ends."""

from __future__ import annotations

import os

from celery import states
from django.core.management.base import BaseCommand, CommandError

from tasklog import reading, sections, terminal
from tasklog.archive import ArchiveError
from tasklog.follow import SUCCESSFUL_STATES, FollowTimeout, LogFollower
from tasklog.management.arguments import (
    add_database_argument,
    add_filter_arguments,
    add_raw_argument,
    count,
    line_filter,
    seconds,
)
from tasklog.models import TaskLog, TaskLogLine
from tasklog.portable import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    quiet_when_reader_leaves,
)
from tasklog.results import QUEUED


class Command(BaseCommand):
    help = (
        "Print a task's log like tail -f until the task ends. Exit status: 0 success, "
        "1 failure (or revoked, interrupted), 2 timeout, 3 refused by the --url site."
    )

    def add_arguments(self, parser):
        parser.add_argument("task_id", help="Celery task id; the task need not have started.")
        parser.add_argument("--tail", type=count, metavar="N", help="Start with the last N lines.")
        parser.add_argument("--timeout", type=seconds, help="Give up after this many seconds.")
        parser.add_argument("--interval", type=seconds, default=0.2, help="Poll interval (0.2).")
        add_filter_arguments(parser)
        add_raw_argument(parser)
        add_database_argument(parser)
        parser.add_argument(
            "--url", help="Follow over HTTP from this tasklog URL (https://site/tasklog/)."
        )
        parser.add_argument("--token", help="API token for --url (default: $TASKLOG_TOKEN).")

    @quiet_when_reader_leaves()
    def handle(self, *args, task_id, tail, timeout, interval, raw, database, url, token, **options):
        """Filters (--grep, --stream, ...) choose the lines shown; groups still indent them."""
        if url:
            return self.follow_remote(url, token, task_id, tail=tail, timeout=timeout)
        clean = terminal.text_filter(raw=raw, style=self.style)
        shown_id = terminal.safe(task_id)  # the id and the state can hold anything
        chosen = line_filter(options)
        lines = TaskLogLine.objects.using(database).for_task(task_id)
        after = 0
        if tail is not None:
            after = reading.seq_before_tail(lines.chosen_by(chosen), tail)
        follower = LogFollower(
            task_id, after=after, poll_interval=interval, using=database, chosen=chosen
        )
        placer = sections.Placer(lines)
        try:
            state = follower.current_state()[0]
            if state == states.PENDING:
                self.stderr.write(f"Waiting for task {shown_id} to start...")
            elif state == QUEUED:
                log = TaskLog.objects.using(database).find(task_id)
                self.stderr.write(f"Task {shown_id}: {terminal.safe(reading.waiting_note(log))}")
            for page in follower.pages(timeout):
                shown = [reading.Shown(line, place) for line, place in placer.place(page)]
                if options["json"]:
                    self.stdout.write(reading.ndjson_page(shown), ending="")
                    continue
                for item in shown:
                    self.stdout.write(
                        reading.in_section(
                            item.line, item.place, reading.plain_line(item.line), clean
                        ),
                        reading.line_style(item.line, self.style),
                    )
        except ArchiveError as error:
            raise CommandError(f"Task {shown_id}: {terminal.safe(str(error))}") from None
        except FollowTimeout as timed_out:
            raise CommandError(
                f"Timed out after {timeout:g} s; "
                f"task {shown_id} is {terminal.safe(timed_out.state)}.",
                returncode=EXIT_TIMEOUT,
            ) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted.", returncode=EXIT_INTERRUPTED) from None
        if follower.state not in SUCCESSFUL_STATES:
            raise CommandError(
                f"Task {shown_id} ended: {terminal.safe(follower.state)}.", returncode=EXIT_FAILED
            )
        self.stderr.write(f"Task {shown_id} ended: {terminal.safe(follower.state)}.")

    def follow_remote(self, url, token, task_id, *, tail, timeout) -> None:
        """``--url``: the same output and exit status, read from the site with a token."""
        from tasklog import remote  # needs the "remote" extra (httpx, httpx-sse)

        token = token or os.environ.get(remote.TOKEN_VARIABLE)
        if not token:
            raise CommandError(f"--url needs --token or {remote.TOKEN_VARIABLE}.")
        if not url.startswith(("http://", "https://")):
            raise CommandError("--url must start with http:// or https://")
        status, message = remote.follow(
            url,
            task_id,
            token,
            write_line=lambda text, style: self.stdout.write(
                text, getattr(self.style, style) if style else str
            ),
            write_notice=self.stderr.write,
            tail=tail,
            timeout=timeout,
        )
        if status:
            raise CommandError(message, returncode=status)
        self.stderr.write(message)
