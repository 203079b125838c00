"""Database router for sites that keep the log tables in their own database.

Add ``"tasklog.routers.TaskLogRouter"`` to ``DATABASE_ROUTERS`` when
``CELERY_TASKLOG_DATABASE`` is not ``"default"``, so that ``migrate`` creates the tables there.
"""

from __future__ import annotations

from .conf import settings

APP_LABEL = "tasklog"


class TaskLogRouter:
    def db_for_read(self, model, **hints):
        return settings.DATABASE if model._meta.app_label == APP_LABEL else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == APP_LABEL:
            return db == settings.DATABASE
        return None
