"""``manage.py tasklog_diagnose``: is celery-tasklog set up and working, end to end?"""

from __future__ import annotations

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError
from tabulate import tabulate

from tasklog.diagnostics import FAIL, WARN, run_diagnostics
from tasklog.management.arguments import seconds


class Command(BaseCommand):
    help = (
        "Check settings, database, broker, workers, result backend, the beat prune schedule "
        "and capture; --probe also sends a task and waits for its line. Exit status 1 on a FAIL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--probe", action="store_true", help="Send a probe task.")
        parser.add_argument("--timeout", type=seconds, default=10.0, help="Seconds (10).")
        parser.add_argument("--format", choices=["table", "json"], default="table")

    def handle(self, *args, probe, timeout, format, **options):
        results = run_diagnostics(probe=probe, timeout=timeout)
        if format == "json":
            self.stdout.write(json.dumps([asdict(result) for result in results], indent=2))
        else:
            rows = [
                (result.name, self.styled(result.status), result.detail, result.hint)
                for result in results
            ]
            self.stdout.write(tabulate(rows, headers=("check", "status", "detail", "hint")))
        failed = [result.name for result in results if result.status == FAIL]
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}.")

    def styled(self, status: str) -> str:
        style = {FAIL: self.style.ERROR, WARN: self.style.WARNING}.get(status, self.style.SUCCESS)
        return style(status)
