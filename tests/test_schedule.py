import pytest
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal
from django.test.utils import override_settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tasklog.schedule import PRUNE_ENTRY_NAME, ensure_prune_schedule

pytestmark = pytest.mark.django_db


def entry() -> PeriodicTask:
    return PeriodicTask.objects.get(name=PRUNE_ENTRY_NAME)


def cron(task: PeriodicTask) -> str:
    c = task.crontab
    return " ".join((c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week))


def test_migrate_created_the_daily_prune():
    task = entry()
    assert (task.task, task.enabled, cron(task)) == ("tasklog.prune_task_logs", True, "30 3 * * *")
    assert str(task.crontab.timezone) == "UTC"


def test_running_migrate_again_keeps_one_entry():
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    ensure_prune_schedule()
    assert PeriodicTask.objects.filter(name=PRUNE_ENTRY_NAME).count() == 1
    assert CrontabSchedule.objects.filter(minute="30", hour="3").count() == 1


def test_migrate_recreates_a_deleted_entry():
    entry().delete()
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert cron(entry()) == "30 3 * * *"


@override_settings(CELERY_TASKLOG_PRUNE_SCHEDULE="15 2 * * 1")
def test_the_setting_sets_the_schedule_of_a_new_entry():
    entry().delete()
    assert cron(ensure_prune_schedule()) == "15 2 * * 1"


def test_a_schedule_an_admin_changed_survives():
    task = entry()
    task.crontab = CrontabSchedule.objects.create(minute="0", hour="5")
    task.enabled = False
    task.save()
    with override_settings(CELERY_TASKLOG_PRUNE_SCHEDULE="15 2 * * 1"):
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    task = entry()
    assert (cron(task), task.enabled) == ("0 5 * * *", False)


@override_settings(CELERY_TASKLOG_PRUNE_SCHEDULE=None)
def test_none_disables_the_entry_and_creates_none():
    assert ensure_prune_schedule().enabled is False
    assert entry().enabled is False
    entry().delete()
    assert ensure_prune_schedule() is None
    assert not PeriodicTask.objects.filter(name=PRUNE_ENTRY_NAME).exists()


def test_without_django_celery_beat_nothing_happens():
    apps = [app for app in settings.INSTALLED_APPS if app != "django_celery_beat"]
    with override_settings(INSTALLED_APPS=apps):
        assert ensure_prune_schedule() is None


@pytest.mark.django_db(databases=["default", "logs"])
def test_migrating_a_second_database_leaves_the_schedule_to_the_first():
    emit_post_migrate_signal(verbosity=0, interactive=False, db="logs")

    assert not PeriodicTask.objects.using("logs").filter(name=PRUNE_ENTRY_NAME).exists()
    assert PeriodicTask.objects.using("default").filter(name=PRUNE_ENTRY_NAME).count() == 1
