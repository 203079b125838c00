"""System checks: every bad ``CELERY_TASKLOG_*`` value is reported before a task ever runs.

Ids: E001 not a boolean, E002 not a number, E003 out of range, E004 unknown database alias,
E005 bad crontab, E006 descriptor capture with a pool that runs tasks side by side in one process.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.checks import Error, Tags

from .conf import OPTIONS, PREFIX, SettingError, settings

THREADED_POOLS = {"threads", "gevent", "eventlet"}


def check_settings(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name in OPTIONS:
        _value, source = settings.raw(name)
        try:
            settings.parsed(name)
        except SettingError as error:
            where = "environment variable" if source == "environment" else "setting"
            errors.append(
                Error(
                    f"The {where} {PREFIX}{name} {error}.",
                    hint=OPTIONS[name].help,
                    id=error.check_id,
                )
            )
    return errors


def check_fd_capture_pool(app_configs=None, **kwargs) -> list[Error]:
    pool = str(getattr(django_settings, "CELERY_WORKER_POOL", "") or "")
    if settings.CAPTURE_FD and pool in THREADED_POOLS:
        return [fd_capture_pool_error(pool)]
    return []


def fd_capture_pool_error(pool: str) -> Error:
    return Error(
        f"{PREFIX}CAPTURE_FD=True cannot be used with the {pool!r} pool: file descriptors 1 "
        "and 2 belong to the whole process, so concurrent tasks would share them.",
        hint="Use the prefork or solo pool, or set CELERY_TASKLOG_CAPTURE_FD=False.",
        id="tasklog.E006",
    )


def register_checks() -> None:
    from django.core.checks import register

    register(Tags.compatibility)(check_settings)
    register(Tags.compatibility)(check_fd_capture_pool)
