"""Settings of celery-tasklog, read lazily so that ``override_settings`` works.

Every value comes from the Django setting ``CELERY_TASKLOG_<NAME>``, else from the environment
variable of the same name, else from the default. Parsing lives here; ``checks.py`` turns a bad
value into a system check error, and the properties fall back to the default so that a bad value
never raises inside a running task.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

PREFIX = "CELERY_TASKLOG_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


class SettingError(ValueError):
    """A setting has a value that cannot be used; ``check_id`` names the system check."""

    def __init__(self, message: str, check_id: str):
        super().__init__(message)
        self.check_id = check_id


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingError(f"must be True or False, got {value!r}", "tasklog.E001")


def _parse_number(value: Any, kind: type, minimum: float, *, above: bool = False):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SettingError(f"must be a number, got {value!r}", "tasklog.E002")
    try:
        number = kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise SettingError(f"must be a number, got {value!r}", "tasklog.E002") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise SettingError(f"must be a whole number, got {value!r}", "tasklog.E002")
    if number < minimum or (above and number == minimum):
        relation = "greater than" if above else "at least"
        raise SettingError(f"must be {relation} {minimum}, got {value!r}", "tasklog.E003")
    return number


def non_negative_int(value: Any) -> int:
    return _parse_number(value, int, 0)


def positive_int(value: Any) -> int:
    return _parse_number(value, int, 1)


def positive_float(value: Any) -> float:
    return _parse_number(value, float, 0, above=True)


def database_alias(value: Any) -> str:
    if not isinstance(value, str) or value not in django_settings.DATABASES:
        known = ", ".join(sorted(django_settings.DATABASES))
        raise SettingError(
            f"must name a database in DATABASES ({known}), got {value!r}", "tasklog.E004"
        )
    return value


def crontab_or_off(value: Any) -> str | None:
    """A five-field crontab ("30 3 * * *"); None or "" switches the scheduled prune off."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    fields = value.split() if isinstance(value, str) else []
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise SettingError(
            f"must be a crontab of five fields such as '30 3 * * *', or None, got {value!r}",
            "tasklog.E005",
        )
    return " ".join(fields)


@dataclass(frozen=True)
class Option:
    default: Any
    parse: Callable[[Any], Any]
    help: str


OPTIONS: dict[str, Option] = {
    "ENABLED": Option(True, parse_bool, "False turns capture off completely."),
    "ALL_TASKS": Option(False, parse_bool, "Capture every task through Celery signals."),
    "CAPTURE_LOGGING": Option(True, parse_bool, "Store logging records of a task as stream 'log'."),
    "CAPTURE_FD": Option(False, parse_bool, "Capture file descriptors 1 and 2 (prefork/solo)."),
    "BATCH_SIZE": Option(1000, positive_int, "Lines buffered before a flush."),
    "FLUSH_INTERVAL": Option(0.2, positive_float, "Seconds the oldest buffered line may wait."),
    "BUFFER_LINES": Option(10_000, positive_int, "Lines kept per task while the database lags."),
    "MAX_LINES": Option(1000, non_negative_int, "Lines stored per task (head and tail); 0: all."),
    "MAX_LINE_LENGTH": Option(10_000, positive_int, "Characters stored per line."),
    "RETENTION_DAYS": Option(30, non_negative_int, "Days logs are kept; 0 keeps them forever."),
    "PRUNE_SCHEDULE": Option("30 3 * * *", crontab_or_off, "Crontab of the periodic prune."),
    "STALE_AFTER": Option(600, positive_int, "Seconds of silence before a run is interrupted."),
    "RECORD_QUEUED": Option(True, parse_bool, "Record a captured task when it is published."),
    "QUEUE_TIMEOUT": Option(
        86_400, non_negative_int, "Seconds a task may wait in its queue; 0: forever."
    ),
    "DATABASE": Option("default", database_alias, "Database alias holding the log tables."),
}


class Settings:
    """Typed access to the ``CELERY_TASKLOG_*`` settings, each read on every access."""

    def raw(self, name: str) -> tuple[Any, str]:
        """The unparsed value of a setting and where it came from."""
        key = PREFIX + name
        if hasattr(django_settings, key):
            return getattr(django_settings, key), "settings"
        if key in os.environ:
            return os.environ[key], "environment"
        return OPTIONS[name].default, "default"

    def parsed(self, name: str) -> Any:
        """The parsed value; raises ``SettingError`` when it is invalid."""
        value, _source = self.raw(name)
        return OPTIONS[name].parse(value)

    def value(self, name: str) -> Any:
        """The parsed value, or the default when invalid (the system check reports it)."""
        try:
            return self.parsed(name)
        except SettingError:
            return OPTIONS[name].parse(OPTIONS[name].default)

    def __getattr__(self, name: str) -> Any:
        if name in OPTIONS:
            return self.value(name)
        raise AttributeError(name)


settings = Settings()
