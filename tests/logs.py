"""Task logs, results and users made with the ORM, for the web tests."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib.auth.models import Permission, User
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasklog import push
from tasklog.conf import settings
from tasklog.models import Stream, TaskLog, TaskLogLine

TASK_ID = "0b6f2a52-6a35-4c39-9a7e-3d4c1f7e9a01"


def make_log(task_id: str = TASK_ID, *, messages=(), **fields) -> TaskLog:
    """A TaskLog with one stdout line per message, numbered from 1."""
    now = timezone.now()
    values = {"task_name": "example.tasks.timed_print_task", "started": now, "last_seen": now}
    log = TaskLog.objects.create(task_id=task_id, **(values | fields))
    add_lines(task_id, messages)
    return log


def add_lines(task_id: str, messages, *, first_seq: int | None = None, stream=Stream.STDOUT):
    if first_seq is None:
        last = TaskLogLine.objects.for_task(task_id).order_by("-seq").first()
        first_seq = last.seq + 1 if last else 1
    start = timezone.now()
    TaskLogLine.objects.bulk_create(
        TaskLogLine(
            task_id=task_id,
            seq=first_seq + offset,
            timestamp=start + timedelta(milliseconds=offset),
            stream=stream,
            message=message,
        )
        for offset, message in enumerate(messages)
    )
    TaskLog.objects.filter(task_id=task_id).update(lines=first_seq + len(messages) - 1)
    changed(task_id)


def changed(task_id: str) -> None:
    """NOTIFY as the worker does after a flush and at the end of a run: a live view with
    pushed updates (PostgreSQL) wakes now, not at its next recheck."""
    push.notify(task_id, settings.DATABASE)


def close_log(task_id: str = TASK_ID) -> None:
    """End the run as the worker does after the task's last lines."""
    TaskLog.objects.filter(task_id=task_id).update(finished=timezone.now())
    changed(task_id)


def make_result(task_id: str = TASK_ID, status: str = "SUCCESS", result=None) -> TaskResult:
    stored = TaskResult.objects.create(
        task_id=task_id,
        status=status,
        content_type="application/json",
        content_encoding="utf-8",
        result=json.dumps(result),
    )
    changed(task_id)
    return stored


def make_user(
    username: str, *, staff: bool = True, can_read_logs: bool = True, password: str | None = None
) -> User:
    """A user; without a password (hashing one is slow) log in with ``force_login``."""
    user = User.objects.create_user(username, password=password, is_staff=staff)
    if can_read_logs:
        user.user_permissions.add(Permission.objects.get(codename="view_tasklogline"))
    return user
