from django.apps import AppConfig
from django.core.checks import Tags, register
from django.utils.translation import gettext_lazy as _


class TaskLogConfig(AppConfig):
    name = "tasklog"
    label = "tasklog"
    verbose_name = _("Celery task logs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .checks import register_checks
        from .origin import connect_publish_hook
        from .push import check_push, connect_run_end_signals
        from .schedule import connect_prune_schedule
        from .signals import connect_signals

        register_checks()
        register(Tags.compatibility)(check_push)
        connect_signals()
        connect_run_end_signals()
        connect_publish_hook()
        connect_prune_schedule(self)
