"""celery-tasklog: the stdout, stderr and logging of Celery tasks, stored and shown live."""

__version__ = "0.1.0"
