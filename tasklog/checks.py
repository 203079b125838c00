"""System checks: every bad ``CELERY_TASKLOG_*`` value is reported before a task ever runs.

Ids: E001 not a boolean, E002 not a number, E003 out of range, E004 unknown database alias,
E005 bad crontab, E006 descriptor capture with a pool that runs tasks side by side in one process,
E020 access policy not importable, E021 access policy not callable, E022 bad share link maximum age,
E040 archive setting not a {"storage", "after_days"} dictionary, E041 unknown storage alias,
E042 bad archive age, E043 archive age not below the retention, E044 archive storage not loadable.
E050 bad CELERY_TASKLOG_PUSH, E051/E052 push asked for without PostgreSQL/psycopg 3 (``push``).
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.checks import Error, Tags
from django.core.files.storage import storages

from .conf import OPTIONS, PREFIX, SettingError, settings
from .pools import DEFAULT_POOL, configured_pool_name, tasks_share_a_process


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


def check_archive(app_configs=None, **kwargs) -> list[Error]:
    """E043 and E044: an archive setting that parses but cannot work with the rest."""
    try:
        archive = settings.parsed("ARCHIVE")
    except SettingError:
        return []  # reported by check_settings
    if archive is None:
        return []
    errors = []
    retention = settings.RETENTION_DAYS
    if retention and archive.after_days >= retention:
        errors.append(
            Error(
                f'{PREFIX}ARCHIVE["after_days"] ({archive.after_days}) must be below '
                f"{PREFIX}RETENTION_DAYS ({retention}): logs would be deleted before they "
                "are archived.",
                hint="Archive earlier, or keep logs longer.",
                id="tasklog.E043",
            )
        )
    try:
        storages[archive.storage]
    except Exception as error:  # whatever the backend raises while it loads
        errors.append(
            Error(
                f"The archive storage STORAGES[{archive.storage!r}] cannot be loaded: {error}",
                hint="Install its backend (pip install 'celery-tasklog[archive]' for S3) "
                "and check its OPTIONS.",
                id="tasklog.E044",
            )
        )
    return errors


def check_fd_capture_pool(app_configs=None, **kwargs) -> list[Error]:
    """E006 for the pool the settings choose (``CELERY_WORKER_POOL``); a worker started with
    ``--pool`` is checked by ``worker_errors`` when it starts."""
    return fd_capture_pool_errors(getattr(django_settings, "CELERY_WORKER_POOL", DEFAULT_POOL))


def worker_errors(pool) -> list[Error]:
    """Every check a starting worker must pass, with the pool it really runs."""
    return [*check_settings(), *check_archive(), *fd_capture_pool_errors(pool)]


def fd_capture_pool_errors(pool) -> list[Error]:
    name = configured_pool_name(pool)
    if settings.CAPTURE_FD and tasks_share_a_process(name):
        return [fd_capture_pool_error(name)]
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
    register(Tags.compatibility)(check_archive)
