"""Every bad setting value is a system check error that names the setting."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tasklog.checks import check_fd_capture_pool, check_settings


def test_valid_settings_have_no_errors():
    assert check_settings() == []


@pytest.mark.parametrize(
    ("name", "value", "check_id", "message"),
    [
        ("ENABLED", "maybe", "tasklog.E001", "must be True or False, got 'maybe'"),
        ("MAX_LINES", "abc", "tasklog.E002", "must be a number, got 'abc'"),
        ("BATCH_SIZE", 2.5, "tasklog.E002", "must be a whole number, got 2.5"),
        ("RETENTION_DAYS", -1, "tasklog.E003", "must be at least 0, got -1"),
        ("FLUSH_INTERVAL", 0, "tasklog.E003", "must be greater than 0, got 0"),
        (
            "DATABASE",
            "archive",
            "tasklog.E004",
            "must name a database in DATABASES (default, logs, sqlite)",
        ),
        ("PRUNE_SCHEDULE", "daily", "tasklog.E005", "must be a crontab of five fields"),
    ],
)
def test_each_bad_value_is_reported(settings, name, value, check_id, message):
    setattr(settings, f"CELERY_TASKLOG_{name}", value)

    [error] = check_settings()

    assert error.id == check_id
    assert error.msg.startswith(f"The setting CELERY_TASKLOG_{name} {message}")


@pytest.mark.abuse
@pytest.mark.parametrize(
    ("name", "value", "check_id", "message"),
    [
        ("FLUSH_INTERVAL", "nan", "tasklog.E002", "must be a number, got 'nan'"),
        ("FLUSH_INTERVAL", float("nan"), "tasklog.E002", "must be a number, got nan"),
        ("FLUSH_INTERVAL", "inf", "tasklog.E003", "must be at most 3600, got 'inf'"),
        ("FLUSH_INTERVAL", float("inf"), "tasklog.E003", "must be at most 3600, got inf"),
        ("FLUSH_INTERVAL", "-inf", "tasklog.E003", "must be greater than 0, got '-inf'"),
        ("BATCH_SIZE", "inf", "tasklog.E003", "must be at most 2147483647, got 'inf'"),
        ("MAX_LINES", "NaN", "tasklog.E002", "must be a number, got 'NaN'"),
        (
            "STALE_AFTER",
            "99999999999999999999",
            "tasklog.E003",
            "must be at most 31622400, got '99999999999999999999'",
        ),
        ("RETENTION_DAYS", 9999999999, "tasklog.E003", "must be at most 36500, got 9999999999"),
        ("RETENTION_DAYS", 10**400, "tasklog.E003", "must be at most 36500, got 1000000000"),
        ("MAX_LINE_LENGTH", "9" * 5000, "tasklog.E003", "must be at most 2147483647, got '999"),
        ("BUFFER_LINES", "1e3x", "tasklog.E002", "must be a number, got '1e3x'"),
        ("PRUNE_SCHEDULE", "99 99 * * *", "tasklog.E005", "must be a crontab of five fields"),
        ("PRUNE_SCHEDULE", "a b c d e", "tasklog.E005", "must be a crontab of five fields"),
        ("PRUNE_SCHEDULE", "30 3 * * * *", "tasklog.E005", "must be a crontab of five fields"),
        ("PRUNE_SCHEDULE", "30 3 * 13 *", "tasklog.E005", "must be a crontab of five fields"),
    ],
)
def test_nan_inf_huge_numbers_and_impossible_crontabs_are_reported(
    settings, name, value, check_id, message
):
    setattr(settings, f"CELERY_TASKLOG_{name}", value)

    [error] = check_settings()

    assert error.id == check_id
    assert error.msg.startswith(f"The setting CELERY_TASKLOG_{name} {message}")
    assert len(error.msg) < 300  # a huge value is cut short in the message


@pytest.mark.parametrize("schedule", ["30 3 * * *", "*/15 * * * 1-5", "0 0 1 jan *", "0 4 * * sun"])
def test_valid_crontabs_pass(settings, schedule):
    settings.CELERY_TASKLOG_PRUNE_SCHEDULE = schedule
    assert check_settings() == []


def test_a_bad_environment_variable_is_reported_as_such(monkeypatch):
    monkeypatch.setenv("CELERY_TASKLOG_MAX_LINES", "-5")

    [error] = check_settings()

    assert error.id == "tasklog.E003"
    assert (
        error.msg
        == "The environment variable CELERY_TASKLOG_MAX_LINES must be at least 0, got '-5'."
    )


@pytest.mark.parametrize("pool", ["threads", "gevent", "eventlet"])
def test_descriptor_capture_is_refused_with_a_threaded_pool(settings, pool):
    settings.CELERY_TASKLOG_CAPTURE_FD = True
    settings.CELERY_WORKER_POOL = pool

    [error] = check_fd_capture_pool()

    assert error.id == "tasklog.E006"
    assert f"cannot be used with the {pool!r} pool" in error.msg


def test_descriptor_capture_is_allowed_with_prefork(settings):
    settings.CELERY_TASKLOG_CAPTURE_FD = True
    settings.CELERY_WORKER_POOL = "prefork"

    assert check_fd_capture_pool() == []


def test_manage_py_check_fails_on_a_bad_value(settings):
    settings.CELERY_TASKLOG_MAX_LINES = "abc"

    with pytest.raises(SystemCheckError, match=r"tasklog\.E002"):
        call_command("check")
