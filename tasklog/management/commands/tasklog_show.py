"""``manage.py tasklog_show``: one task's log, or the list of recent tasks."""

from __future__ import annotations

import contextlib

from django.core.management.base import BaseCommand, CommandError

from tasklog import reading, search, terminal
from tasklog.archive import ArchiveError
from tasklog.management.arguments import (
    add_database_argument,
    add_filter_arguments,
    add_raw_argument,
    context_count,
    count,
    line_filter,
)
from tasklog.models import TaskLog, TaskLogLine
from tasklog.portable import quiet_when_reader_leaves
from tasklog.results import effective_state, result_for, results_by_task_id


class Command(BaseCommand):
    help = "Show the stored log of a task; without a task id, list recent tasks."

    def add_arguments(self, parser):
        parser.add_argument("task_id", nargs="?", help="Celery task id.")
        parser.add_argument("--list", action="store_true", help="List recent tasks.")
        parser.add_argument("--limit", type=count, default=20, help="Tasks listed (20).")
        parser.add_argument("--format", choices=["table", "plain", "json"], default="table")
        ends = parser.add_mutually_exclusive_group()
        ends.add_argument("--tail", type=count, metavar="N", help="Only the last N lines.")
        ends.add_argument("--head", type=count, metavar="N", help="Only the first N lines.")
        parser.add_argument("--since", help="ISO 8601 time, or an age: 90s, 10m, 2h, 1d.")
        add_filter_arguments(parser)
        parser.add_argument(
            "-C",
            "--context",
            type=context_count,
            metavar="N",
            help="With --grep: N lines before and after each hit.",
        )
        add_raw_argument(parser)
        add_database_argument(parser)

    @quiet_when_reader_leaves()
    def handle(self, *args, task_id, database, **options):
        self.clean = terminal.text_filter(raw=options["raw"], style=self.style)
        if options["list"] or not task_id:
            logs = list(TaskLog.objects.using(database).order_by("-started")[: options["limit"]])
            results = results_by_task_id(log.task_id for log in logs)
            self.stdout.write(reading.tasks_table(logs, results) if logs else "No task logs.")
            return
        log = TaskLog.objects.using(database).filter(task_id=task_id).first()
        result = result_for(task_id)
        if log is None and result is not None:
            raise CommandError(
                f"Task {terminal.safe(task_id)} is known to the result backend "
                f"({terminal.safe(effective_state(None, result))}) "
                "but has no stored log: it does not use TerminalLoggingTask, capture was "
                "disabled, or its log was pruned."
            )
        if log is None:
            raise CommandError(f"No task log with id {terminal.safe(repr(task_id))}.")
        chosen = line_filter(options)
        pages = reading.shown_pages(
            TaskLogLine.objects.using(database).for_task(task_id),
            chosen,
            since=self.since(options["since"]),
            head=options["head"],
            tail=options["tail"],
            context=options["context"],
        )
        written_as = "ndjson" if options["json"] else options["format"]
        walk = search.walking_the_index(database) if chosen.active else contextlib.nullcontext()
        with walk:
            try:
                getattr(self, f"write_{written_as}")(log, result, pages)
            except ArchiveError as error:
                message = f"Task {terminal.safe(task_id)}: {terminal.safe(str(error))}"
                raise CommandError(message) from None

    def since(self, text: str | None):
        if not text:
            return None
        try:
            return reading.parse_since(text)
        except ValueError as error:
            raise CommandError(f"--since: {error}.") from None

    def write_table(self, log, result, pages):
        self.stdout.write(reading.task_header(log, result) + "\n\n")
        seq_width = len(str(log.lines))
        written = 0
        for page in pages:
            self.stdout.write(
                reading.table_page(
                    page, seq_width=seq_width, with_headers=not written, clean=self.clean
                )
            )
            written += len(page)
        if not written:
            self.stdout.write("No lines.")

    def write_plain(self, log, result, pages):
        for page in pages:
            for shown in page:
                if shown.gap:
                    self.stdout.write(reading.GAP)
                line = shown.line
                self.stdout.write(
                    reading.in_section(line, shown.place, reading.plain_line(line), self.clean),
                    reading.line_style(line, self.style),
                )

    def write_ndjson(self, log, result, pages):
        for page in pages:
            self.stdout.write(reading.ndjson_page(page), ending="")

    def write_json(self, log, result, pages):
        for chunk in reading.json_chunks(log, result, pages):
            self.stdout.write(chunk, ending="")
