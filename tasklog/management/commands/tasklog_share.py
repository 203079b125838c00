"""``manage.py tasklog_share``: print a share link to one task's log, or revoke its links."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils.http import urlencode

from tasklog import shares
from tasklog.management.arguments import age
from tasklog.models import TaskLog


class Command(BaseCommand):
    help = (
        "Print a signed, read-only link to a task's log that works without a login until it "
        "expires (default 24 h, at most CELERY_TASKLOG_SHARE_MAX_AGE). --revoke ends every "
        "link made for the task so far."
    )

    def add_arguments(self, parser):
        parser.add_argument("task_id", help="Celery task id of a task that has a log.")
        parser.add_argument("--expires", type=age, metavar="SPAN", help="90m, 2h, 7d (24h).")
        parser.add_argument("--site", default="", help="Prefix such as https://example.com.")
        parser.add_argument(
            "--revoke", action="store_true", help="Revoke every link to this task; make none."
        )

    def handle(self, *args, task_id, expires, site, revoke, **options):
        log = TaskLog.objects.find(task_id)
        if log is None:
            raise CommandError(f"Task {task_id!r} has no log (yet): there is nothing to share.")
        if revoke:
            shares.revoke(log)
            self.stdout.write(f"Every share link to task {task_id!r} is revoked.")
            return
        try:
            token = shares.share_token(log, expires)
        except shares.ShareError as error:
            raise CommandError(str(error)) from None
        page = reverse("tasklog:task_log", args=[task_id])
        self.stdout.write(f"{site.rstrip('/')}{page}?{urlencode({shares.QUERY_PARAMETER: token})}")
