"""The Celery app of the test suite: ``celery -A tests.celery_app worker`` runs it."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests", include=["example.tasks", "tests.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
