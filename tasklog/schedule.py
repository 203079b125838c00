"""The periodic prune as a django-celery-beat ``PeriodicTask``, created once by ``migrate``.

The entry is created when it is missing, on the crontab of ``CELERY_TASKLOG_PRUNE_SCHEDULE``.
After that it belongs to the site's admins: a later ``migrate`` never changes its schedule.
A schedule of ``None`` disables the entry (an admin may switch it on again).
"""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models.signals import post_migrate

from .conf import settings

PRUNE_ENTRY_NAME = "tasklog: prune old task logs"
PRUNE_TASK = "tasklog.prune_task_logs"
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def connect_prune_schedule(app_config: AppConfig) -> None:
    post_migrate.connect(
        ensure_prune_schedule, sender=app_config, dispatch_uid="tasklog.ensure_prune_schedule"
    )


def beat_ready(using: str = DEFAULT_DB_ALIAS) -> bool:
    """django-celery-beat is installed, reads its schedule from ``using``, and its tables are
    migrated there (``migrate`` of a second database leaves the schedule alone)."""
    if not apps.is_installed("django_celery_beat"):
        return False
    from django_celery_beat.models import PeriodicTask

    return (
        router.db_for_write(PeriodicTask) == using
        and router.allow_migrate_model(using, PeriodicTask)
        and PeriodicTask._meta.db_table in connections[using].introspection.table_names()
    )


def prune_entry(using: str = DEFAULT_DB_ALIAS):
    """The prune's ``PeriodicTask``, or None; call only when ``beat_ready(using)``."""
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.using(using).filter(name=PRUNE_ENTRY_NAME).first()


def ensure_prune_schedule(using: str = DEFAULT_DB_ALIAS, **kwargs):
    """Create the prune's entry if it is missing; disable it if the schedule setting is None.

    A ``post_migrate`` handler, safe to run any number of times. Returns the entry, or None.
    """
    if not beat_ready(using):
        return None
    entry = prune_entry(using)
    schedule = settings.PRUNE_SCHEDULE
    if entry is None and schedule is not None:
        return create_prune_entry(schedule, using)
    if entry is not None and schedule is None and entry.enabled:
        entry.enabled = False
        entry.save(update_fields=["enabled"])
    return entry


def create_prune_entry(schedule: str, using: str = DEFAULT_DB_ALIAS):
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    crontab, _created = CrontabSchedule.objects.using(using).get_or_create(
        **dict(zip(CRONTAB_FIELDS, schedule.split(), strict=True)),
        timezone=CrontabSchedule._meta.get_field("timezone").get_default(),
    )
    return PeriodicTask.objects.using(using).create(
        name=PRUNE_ENTRY_NAME,
        task=PRUNE_TASK,
        crontab=crontab,
        description="Deletes task logs older than CELERY_TASKLOG_RETENTION_DAYS and closes "
        "runs whose worker died. Created by celery-tasklog; change the schedule freely.",
    )
