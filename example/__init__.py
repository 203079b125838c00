"""A small Django project that runs celery-tasklog: ``make demo`` starts it."""

# Loaded with Django, so that ``shared_task`` and ``.delay()`` use the project's Celery app.
from .celery import app as celery_app

__all__ = ["celery_app"]
