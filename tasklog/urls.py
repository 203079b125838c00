"""URLs of the task log pages; include them with ``path("tasklog/", include("tasklog.urls"))``."""

from __future__ import annotations

from django.urls import path, register_converter

from . import views


class TaskIdConverter:
    """A Celery task id: letters, digits and ``_.:@+=-``, at most 255 characters.

    Anything else (slashes, spaces, quotes, markup) does not match, so it is a 404.
    """

    regex = r"[A-Za-z0-9][A-Za-z0-9_.:@+=\-]{0,254}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


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
