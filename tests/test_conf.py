"""Settings come from Django settings, else the environment, else the default."""

import pytest

from tasklog.conf import OPTIONS, settings


def test_defaults(monkeypatch):
    for name in OPTIONS:
        monkeypatch.delenv(f"CELERY_TASKLOG_{name}", raising=False)
    assert settings.MAX_LINES == 1000
    assert settings.RETENTION_DAYS == 30
    assert settings.FLUSH_INTERVAL == 0.2
    assert settings.ENABLED is True
    assert settings.DATABASE == "default"
    assert settings.PRUNE_SCHEDULE == "30 3 * * *"


def test_the_environment_is_read_when_the_setting_is_absent(monkeypatch):
    monkeypatch.setenv("CELERY_TASKLOG_MAX_LINES", "250")
    monkeypatch.setenv("CELERY_TASKLOG_ENABLED", "off")
    monkeypatch.setenv("CELERY_TASKLOG_FLUSH_INTERVAL", "0.5")
    assert settings.MAX_LINES == 250
    assert settings.ENABLED is False
    assert settings.FLUSH_INTERVAL == 0.5


def test_the_django_setting_wins_over_the_environment(monkeypatch, django_settings):
    monkeypatch.setenv("CELERY_TASKLOG_MAX_LINES", "250")
    django_settings.CELERY_TASKLOG_MAX_LINES = 40
    assert settings.MAX_LINES == 40


def test_an_invalid_value_falls_back_to_the_default_at_run_time(django_settings):
    django_settings.CELERY_TASKLOG_MAX_LINES = "abc"
    assert settings.MAX_LINES == 1000


def test_an_empty_schedule_switches_the_periodic_prune_off(django_settings):
    django_settings.CELERY_TASKLOG_PRUNE_SCHEDULE = None
    assert settings.PRUNE_SCHEDULE is None


def test_unknown_attributes_are_errors():
    with pytest.raises(AttributeError):
        settings.NO_SUCH_SETTING  # noqa: B018


@pytest.fixture
def django_settings(settings):
    return settings
