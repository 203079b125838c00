"""The example's admin: django-celery-results' task results link to their logs."""

from tasklog.admin import link_task_results_to_logs

link_task_results_to_logs()
