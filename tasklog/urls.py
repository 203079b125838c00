"""URLs of the task log pages; include them with ``path("tasklog/", include("tasklog.urls"))``."""

from __future__ import annotations

import base64
import binascii

from django.urls import path, register_converter

from . import views
from .portable import ENCODED_MARKER, RESERVED_SEGMENTS, task_id_segment

MAX_TASK_ID_LENGTH = 255  # TaskLog.task_id and django-celery-results' TaskResult.task_id


class TaskIdConverter:
    """Any Celery task id, in one canonical path segment.

    Ids of letters, digits and ``_.:@+=-`` (UUIDs and most custom ids) appear verbatim. Every
    other id (slashes, ``#``, ``?``, ``%``, spaces, unicode, a reserved word) is ``~`` followed
    by the base64url of its UTF-8 bytes, so ``reverse()`` works for every id Celery accepts.
    A segment that is neither form, or names an id longer than 255 characters, is a 404.
    """

    regex = r"[A-Za-z0-9][A-Za-z0-9_.:@+=\-]{0,254}|~[A-Za-z0-9_\-]{1,1400}"

    def to_python(self, value: str) -> str:
        if not value.startswith(ENCODED_MARKER):
            if value in RESERVED_SEGMENTS:
                raise ValueError(value)
            return value
        task_id = decode(value[1:])
        if self.to_url(task_id) != value:  # one URL per id: no padding, no verbatim id encoded
            raise ValueError(value)
        return task_id

    def to_url(self, value: str) -> str:
        return task_id_segment(value)


def decode(encoded: str) -> str:
    """The task id in a base64url segment; ``ValueError`` when it is not a storable id."""
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        task_id = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError(encoded) from error
    if not task_id or len(task_id) > MAX_TASK_ID_LENGTH or "\x00" in task_id:
        raise ValueError(encoded)
    return task_id


register_converter(TaskIdConverter, "task_id")

app_name = "tasklog"

urlpatterns = [
    # Before the task patterns, so that "diagnostic" is never read as a task id.
    path("diagnostic/", views.diagnostic, name="diagnostic"),
    path("<task_id:task_id>/", views.task_log, name="task_log"),
    path("<task_id:task_id>/events/", views.task_log_events, name="task_log_events"),
    path("<task_id:task_id>/lines/", views.task_log_lines, name="task_log_lines"),
    path("<task_id:task_id>/download/", views.task_log_download, name="task_log_download"),
]
