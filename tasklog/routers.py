"""Database router for sites that keep the log tables in their own database.

Add ``"tasklog.routers.TaskLogRouter"`` to ``DATABASE_ROUTERS`` when
``CELERY_TASKLOG_DATABASE`` is not ``"default"``, so that ``migrate`` creates the tables there.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from .conf import settings

APP_LABEL = "tasklog"
WITH_THE_USERS = {"accesstoken"}  # API tokens refer to users: they stay in the default database


class TaskLogRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label != APP_LABEL or model._meta.model_name in WITH_THE_USERS:
            return None
        return settings.DATABASE

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == APP_LABEL and model_name in WITH_THE_USERS:
            return db == DEFAULT_DB_ALIAS
        if app_label == APP_LABEL:
            return db == settings.DATABASE
        return None
