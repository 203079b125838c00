"""What a logging record keeps besides its text: its logger's name and its ``extra={}`` fields.

The extra fields go into a JSON column, so they are made JSON-safe here (anything else is shown
by its ``repr``) and bounded, whatever a task passes: a few keys, short keys, short values.
"""

from __future__ import annotations

import logging
import math

from .lines import clean_text, cut_line

# Every attribute a LogRecord has without extra={}, and those added on the way by formatting
# (``message``, ``asctime``), by Celery's TaskFormatter (``task_id``, ``task_name``) and by us.
STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "task_id",
    "task_name",
    "_tasklog_capture",
}
MAX_EXTRA_KEYS = 20
MAX_KEY_LENGTH = 64
MAX_VALUE_LENGTH = 500
LOGGER_NAME_LENGTH = 255


def logger_name(record: logging.LogRecord) -> str:
    """The record's logger name as the ``logger`` column holds it."""
    return clean_text(str(record.name))[:LOGGER_NAME_LENGTH]


def extra_fields(record: logging.LogRecord) -> dict | None:
    """The record's ``extra={}`` fields, JSON-safe and bounded; None when it has none.

    Past ``MAX_EXTRA_KEYS`` keys the rest are counted under ``"…"``, so nothing goes unnoticed.
    """
    names = [name for name in record.__dict__ if name not in STANDARD_ATTRIBUTES]
    if not names:
        return None
    fields = {}
    for name in names[:MAX_EXTRA_KEYS]:
        key = clean_text(str(name))[:MAX_KEY_LENGTH]
        fields[key] = json_safe(record.__dict__[name])
    if len(names) > MAX_EXTRA_KEYS:
        fields["…"] = f"{len(names) - MAX_EXTRA_KEYS} more fields not stored"
    return fields


def json_safe(value) -> str | int | float | bool | None:
    """A scalar JSON can hold as it is; any other value as its (cut) ``repr``.

    Booleans, None, whole numbers that fit in 64 bits and finite floats stay themselves.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if not isinstance(value, str):
        try:
            value = repr(value)
        except Exception as error:
            value = f"<unrepresentable {type(value).__name__}: {type(error).__name__}>"
    return cut_line(clean_text(value), MAX_VALUE_LENGTH)
