"""System checks: every bad ``CELERY_TASKLOG_*`` value is reported before a task ever runs.

Ids: E001 not a boolean, E002 not a number, E003 out of range, E004 unknown database alias,
E005 bad crontab, E006 descriptor capture with a pool that runs tasks side by side in one process,
E020 access policy not importable, E021 access policy not callable, E022 bad share link maximum age,
E030 bad partition period, E031 partitions on a database other than PostgreSQL, E032 partitions on
but the lines table not converted, E033 a partitioned lines table with partitions off, E034 the
table partitioned by another period than the setting's,
E040 archive setting not a {"storage", "after_days"} dictionary, E041 unknown storage alias,
E042 bad archive age, E043 archive age not below the retention, E044 archive storage not loadable,
E050 bad CELERY_TASKLOG_PUSH, E051/E052 push asked for without PostgreSQL/psycopg 3 (``push``).
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.checks import Error, Tags
from django.core.files.storage import storages
from django.db import DatabaseError, connections

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
    """Every check a starting worker must pass, with the pool it really runs.

    The partition checks' connection is closed after them: the pool is not forked yet, and
    nothing in the worker's main process should keep a connection it does not need."""
    try:
        return [
            *check_settings(),
            *check_archive(),
            *fd_capture_pool_errors(pool),
            *check_partitions(databases=[settings.DATABASE]),
        ]
    finally:
        connections[settings.DATABASE].close()


def check_partitions(app_configs=None, databases=None, **kwargs) -> list[Error]:
    """E031-E034: ``CELERY_TASKLOG_PARTITIONS`` and the lines table agree. The table is looked
    at only when the check may use the database (``check --database``, ``migrate``, a worker's
    start); an unreachable database is left to the checks that need it."""
    period, alias = settings.PARTITIONS, settings.DATABASE
    vendor = connections[alias].vendor
    if period and vendor != "postgresql":
        return [
            Error(
                f"{PREFIX}PARTITIONS={period!r} needs PostgreSQL, but the log database "
                f"{alias!r} is {vendor}.",
                hint="Set CELERY_TASKLOG_PARTITIONS = None, or keep the logs on PostgreSQL.",
                id="tasklog.E031",
            )
        ]
    if vendor != "postgresql" or alias not in (databases or ()):
        return []
    try:
        return partition_table_errors(alias, period)
    except DatabaseError:
        return []


def partition_table_errors(alias: str, period: str | None) -> list[Error]:
    from .partitions import is_partitioned, partitioned_by

    converted = is_partitioned(alias)
    convert = "manage.py tasklog_partition --convert"
    if period and not converted:
        return [
            Error(
                f"{PREFIX}PARTITIONS={period!r}, but the lines table of {alias!r} is not "
                "partitioned: its logs are pruned row by row.",
                hint=f"Run {convert} (docs/scaling.md says how long it locks the table).",
                id="tasklog.E032",
            )
        ]
    if converted and not period:
        return [
            Error(
                f"The lines table of {alias!r} is partitioned, but {PREFIX}PARTITIONS is None: "
                "lines written without their partition key would be refused.",
                hint="Set CELERY_TASKLOG_PARTITIONS, or run manage.py tasklog_partition --revert.",
                id="tasklog.E033",
            )
        ]
    existing = partitioned_by(alias) if converted else None
    if existing and existing != period:
        return [
            Error(
                f"The lines table of {alias!r} is partitioned by {existing}, but "
                f"{PREFIX}PARTITIONS={period!r}.",
                hint=f"Set CELERY_TASKLOG_PARTITIONS={existing!r}, or run manage.py "
                f"tasklog_partition --revert, then {convert}.",
                id="tasklog.E034",
            )
        ]
    return []


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
    register(Tags.compatibility, Tags.database)(check_partitions)
