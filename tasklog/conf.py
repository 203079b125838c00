"""Settings of celery-tasklog, read lazily so that ``override_settings`` works.

Every value comes from the Django setting ``CELERY_TASKLOG_<NAME>``, else from the environment
variable of the same name, else from the default. Parsing lives here; ``checks.py`` turns a bad
value into a system check error, and the properties fall back to the default so that a bad value
never raises inside a running task.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from django.conf import settings as django_settings

PREFIX = "CELERY_TASKLOG_"
T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_DOTTED_PATH = re.compile(r"^[^\W\d]\w*(?:\.[^\W\d]\w*)+$")


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


MAX_COUNT = 2**31 - 1
"""The largest count any setting or option takes: it fits every database's integer column."""
MAX_DAYS = 36_500
"""A century of days: ``now - timedelta(days=...)`` overflows not far beyond."""
MAX_SECONDS = 366 * 24 * 3600
"""A year of seconds, the longest wait or age a setting or option takes."""
MAX_FLUSH_INTERVAL = 3600
"""An hour: a line waits no longer than that for its flush."""
_SHOWN_LENGTH = 60


def shown(value: Any) -> str:
    """``repr(value)``, cut short so that a huge bad value still gives a readable error."""
    text = repr(value)
    return text if len(text) <= _SHOWN_LENGTH else f"{text[:_SHOWN_LENGTH]}... ({len(text)} chars)"


def _parse_number(value: Any, kind: type, minimum: float, maximum: float, *, above: bool = False):
    """``value`` as a ``kind`` within bounds; nan, inf and overlong digit strings are refused."""
    not_a_number = SettingError(f"must be a number, got {shown(value)}", "tasklog.E002")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise not_a_number
    text = value.strip() if isinstance(value, str) else value
    try:
        number = float(text)
    except OverflowError:  # an int too large for a float
        number = math.inf
    except ValueError:
        raise not_a_number from None
    if math.isnan(number):
        raise not_a_number
    if number < minimum or (above and number == minimum):
        relation = "greater than" if above else "at least"
        raise SettingError(f"must be {relation} {minimum}, got {shown(value)}", "tasklog.E003")
    if number > maximum:
        raise SettingError(f"must be at most {maximum}, got {shown(value)}", "tasklog.E003")
    if kind is float:
        return number
    if not number.is_integer():
        raise SettingError(f"must be a whole number, got {shown(value)}", "tasklog.E002")
    return int(number)  # exact: every bound is far below 2**53


def non_negative_int(value: Any, maximum: int = MAX_COUNT) -> int:
    return _parse_number(value, int, 0, maximum)


def positive_int(value: Any, maximum: int = MAX_COUNT) -> int:
    return _parse_number(value, int, 1, maximum)


def positive_float(value: Any, maximum: float = MAX_SECONDS) -> float:
    return _parse_number(value, float, 0, maximum, above=True)


def days(value: Any) -> int:
    """A number of days, 0 included."""
    return non_negative_int(value, MAX_DAYS)


def whole_seconds(value: Any) -> int:
    """A whole number of seconds, at least one."""
    return positive_int(value, MAX_SECONDS)


def seconds_or_off(value: Any) -> int:
    """A whole number of seconds; 0 switches off what it limits."""
    return non_negative_int(value, MAX_SECONDS)


def flush_interval(value: Any) -> float:
    return positive_float(value, MAX_FLUSH_INTERVAL)


def database_alias(value: Any) -> str:
    if not isinstance(value, str) or value not in django_settings.DATABASES:
        known = ", ".join(sorted(django_settings.DATABASES))
        raise SettingError(
            f"must name a database in DATABASES ({known}), got {value!r}", "tasklog.E004"
        )
    return value


def crontab_or_off(value: Any) -> str | None:
    """A five-field crontab ("30 3 * * *"); None or "" switches the scheduled prune off.

    Checked by django-celery-beat's own validator, so that beat accepts every value this does.
    """
    from django.core.exceptions import ValidationError
    from django_celery_beat.validators import crontab_validator

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    fields = value.split() if isinstance(value, str) else []
    error = f"must be a crontab of five fields such as '30 3 * * *', or None, got {shown(value)}"
    if len(fields) != 5:
        raise SettingError(error, "tasklog.E005")
    try:
        crontab_validator(" ".join(fields))
    except ValidationError as invalid:
        raise SettingError(f"{error}: {invalid.messages[0]}", "tasklog.E005") from None
    return " ".join(fields)


def dotted_callable(value: Any) -> str:
    """The dotted path of an importable callable, such as an access policy."""
    from django.utils.module_loading import import_string

    if not isinstance(value, str) or not _DOTTED_PATH.match(value.strip()):
        raise SettingError(
            f"must be a dotted path to a callable, got {shown(value)}", "tasklog.E020"
        )
    try:
        target = import_string(value.strip())
    except (ImportError, ValueError) as error:
        raise SettingError(
            f"cannot be imported ({error}), got {shown(value)}", "tasklog.E020"
        ) from None
    if not callable(target):
        raise SettingError(f"must name a callable, got {shown(value)}", "tasklog.E021")
    return value.strip()


def share_max_age(value: Any) -> int:
    """Seconds a share link may live: a whole number from one minute to a year."""
    try:
        seconds = positive_int(value)
    except SettingError:
        seconds = 0
    if not MIN_SHARE_AGE <= seconds <= MAX_SHARE_AGE:
        raise SettingError(
            f"must be a whole number of seconds from {MIN_SHARE_AGE} to {MAX_SHARE_AGE}, "
            f"got {shown(value)}",
            "tasklog.E022",
        )
    return seconds


def push_mode(value: Any) -> bool | None:
    """True, False, or None: automatic (on when the log database is PostgreSQL)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"auto", "none"}):
        return None
    try:
        return parse_bool(value)
    except SettingError:
        raise SettingError(
            f"must be True, False or None (automatic), got {shown(value)}", "tasklog.E050"
        ) from None


def partition_period(value: Any) -> str | None:
    """``"day"`` or ``"week"``: the period of a partition of the lines table; None: off."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in {"day", "week"}:
        return value.strip().lower()
    raise SettingError(f'must be "day", "week" or None, got {shown(value)}', "tasklog.E030")


MIN_SHARE_AGE = 60
MAX_SHARE_AGE = 365 * 24 * 3600


@dataclass(frozen=True)
class ArchiveSetting:
    """Where finished logs go (a ``STORAGES`` alias) and how many days after they finished."""

    storage: str
    after_days: int


ARCHIVE_KEYS = {"storage", "after_days"}


def archive_or_off(value: Any) -> ArchiveSetting | None:
    """``{"storage": "<STORAGES alias>", "after_days": N}``, or None (the default: off).

    From the environment, the same dictionary as JSON. Whether the alias names a storage that
    loads, and how ``after_days`` compares with the retention, is checked in ``checks.py``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict) or set(value) != ARCHIVE_KEYS:
        raise SettingError(
            'must be None or {"storage": "<STORAGES alias>", "after_days": N} with exactly '
            f"these two keys, got {shown(value)}",
            "tasklog.E040",
        )
    storage = value["storage"]
    if not isinstance(storage, str) or storage not in django_settings.STORAGES:
        known = ", ".join(sorted(django_settings.STORAGES))
        raise SettingError(
            f'["storage"] must name a storage in STORAGES ({known}), got {shown(storage)}',
            "tasklog.E041",
        )
    try:
        after_days = positive_int(value["after_days"], MAX_DAYS)
    except SettingError as error:
        raise SettingError(f'["after_days"] {error}', "tasklog.E042") from None
    return ArchiveSetting(storage, after_days)


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
    "FLUSH_INTERVAL": Option(0.2, flush_interval, "Seconds the oldest buffered line may wait."),
    "BUFFER_LINES": Option(10_000, positive_int, "Lines kept per task while the database lags."),
    "MAX_LINES": Option(1000, non_negative_int, "Lines stored per task (head and tail); 0: all."),
    "MAX_LINE_LENGTH": Option(10_000, positive_int, "Characters stored per line."),
    "RETENTION_DAYS": Option(30, days, "Days logs are kept; 0 keeps them forever."),
    "PRUNE_SCHEDULE": Option("30 3 * * *", crontab_or_off, "Crontab of the periodic prune."),
    "STALE_AFTER": Option(600, whole_seconds, "Seconds of silence before a run is interrupted."),
    "RECORD_QUEUED": Option(True, parse_bool, "Record a captured task when it is published."),
    "QUEUE_TIMEOUT": Option(
        86_400, seconds_or_off, "Seconds a task may wait in its queue; 0: forever."
    ),
    "DATABASE": Option("default", database_alias, "Database alias holding the log tables."),
    "ACCESS": Option(
        "tasklog.access.staff_with_permission",
        dotted_callable,
        "Dotted path of the policy (user, task_log) -> bool deciding who reads a log.",
    ),
    "SHARE_MAX_AGE": Option(
        7 * 24 * 3600, share_max_age, "Longest life of a share link, in seconds (7 days)."
    ),
    "ARCHIVE": Option(
        None,
        archive_or_off,
        'Move finished logs to object storage: {"storage": "<STORAGES alias>", "after_days": N}.',
    ),
    "PUSH": Option(
        None,
        push_mode,
        "Live views woken by PostgreSQL NOTIFY instead of polling; None: on with PostgreSQL.",
    ),
    "PARTITIONS": Option(
        None,
        partition_period,
        'Partition the lines table by "day" or "week" (PostgreSQL; see docs/scaling.md).',
    ),
}


class Setting(Generic[T]):
    """One typed property of ``Settings``: the option of the attribute's name, parsed on every
    access (so ``override_settings`` and the environment are seen at once)."""

    def __set_name__(self, owner: type, name: str) -> None:
        if name not in OPTIONS:
            raise TypeError(f"Settings.{name} names no option in OPTIONS")
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...

    @overload
    def __get__(self, instance: Settings, owner: type) -> T: ...

    def __get__(self, instance: Settings | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        return instance.value(self.name)


class Settings:
    """Typed access to the ``CELERY_TASKLOG_*`` settings, each read on every access.

    A new option: its entry in ``OPTIONS`` and one line here, ``NAME: Setting[type] = Setting()``.
    """

    ENABLED: Setting[bool] = Setting()
    ALL_TASKS: Setting[bool] = Setting()
    CAPTURE_LOGGING: Setting[bool] = Setting()
    CAPTURE_FD: Setting[bool] = Setting()
    BATCH_SIZE: Setting[int] = Setting()
    FLUSH_INTERVAL: Setting[float] = Setting()
    BUFFER_LINES: Setting[int] = Setting()
    MAX_LINES: Setting[int] = Setting()
    MAX_LINE_LENGTH: Setting[int] = Setting()
    RETENTION_DAYS: Setting[int] = Setting()
    PRUNE_SCHEDULE: Setting[str | None] = Setting()
    STALE_AFTER: Setting[int] = Setting()
    RECORD_QUEUED: Setting[bool] = Setting()
    QUEUE_TIMEOUT: Setting[int] = Setting()
    DATABASE: Setting[str] = Setting()
    ACCESS: Setting[str] = Setting()
    SHARE_MAX_AGE: Setting[int] = Setting()
    ARCHIVE: Setting[ArchiveSetting | None] = Setting()
    PUSH: Setting[bool | None] = Setting()
    PARTITIONS: Setting[str | None] = Setting()

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


settings = Settings()
