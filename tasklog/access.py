"""Who may read a task's log: the one access policy every reader (page, SSE, JSON, download,
the ``{% tasklog_live %}`` tag) asks.

The policy is the callable named by ``CELERY_TASKLOG_ACCESS``, called as
``policy(user, task_log) -> bool``. ``task_log`` is the task's ``TaskLog``, or None when the task
has no log (not started yet, or unknown): a policy that refuses None never reveals whether a
task exists. The admin is not governed by it: it stays staff-only.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.module_loading import import_string

from .conf import settings

PERMISSION = "tasklog.view_tasklogline"
DEFAULT_POLICY = "tasklog.access.staff_with_permission"

Policy = Callable[[object, object], bool]


def is_log_reader(user) -> bool:
    """An active staff user with ``tasklog.view_tasklogline``: may read every log."""
    return bool(user.is_active and user.is_staff and user.has_perm(PERMISSION))


def staff_with_permission(user, task_log) -> bool:
    """The default policy: active staff with ``tasklog.view_tasklogline`` read every log."""
    return is_log_reader(user)


def launcher_or_staff(user, task_log) -> bool:
    """Log readers, and the user who launched the task (recorded by the middleware)."""
    if is_log_reader(user):
        return True
    return bool(
        user.is_authenticated
        and user.is_active
        and task_log is not None
        and task_log.launched_by_user_id
        and task_log.launched_by_user_id == str(user.pk)
    )


def policy() -> Policy:
    """The configured policy; the default when the setting is bad (the system check says so)."""
    return import_string(settings.ACCESS)


def can_read(user, task_log) -> bool:
    """May ``user`` read ``task_log`` (a ``TaskLog`` or None)? Asks the configured policy."""
    return bool(policy()(user, task_log))
