"""The Celery app of the benchmark workers: ``celery -A benchmarks.celery_app worker``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("benchmarks", include=["benchmarks.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
