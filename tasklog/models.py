"""The two tables: one ``TaskLog`` per task id and its numbered ``TaskLogLine`` rows.

A task's state is not stored here: it comes from django-celery-results' ``TaskResult``
(see ``results.py``), so there is one truth about whether a task succeeded.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings as django_settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .querysets import SECTION_LINES, TaskLogLineQuerySet, TaskLogQuerySet


class Stream(models.TextChoices):
    STDOUT = "stdout", _("stdout")
    STDERR = "stderr", _("stderr")
    LOG = "log", _("logging")
    MARKER = "marker", _("tasklog marker")


class Level(models.IntegerChoices):
    DEBUG = logging.DEBUG, "DEBUG"
    INFO = logging.INFO, "INFO"
    WARNING = logging.WARNING, "WARNING"
    ERROR = logging.ERROR, "ERROR"
    CRITICAL = logging.CRITICAL, "CRITICAL"


class TaskLog(models.Model):
    """One row per task id, from its publication (``queued``) or its start; retries and
    redeliveries are further attempts of the same row."""

    task_id = models.CharField(
        _("task id"), max_length=255, unique=True, help_text=_("Celery id of the task.")
    )
    task_name = models.CharField(_("task name"), max_length=255, blank=True, db_index=True)
    worker = models.CharField(
        _("worker"), max_length=255, blank=True, help_text=_("Hostname of the last worker.")
    )
    queued = models.DateTimeField(
        _("queued"), null=True, blank=True, help_text=_("When the task was published.")
    )
    queue = models.CharField(
        _("queue"),
        max_length=255,
        blank=True,
        db_default="",  # rows inserted by code that predates the column (a rolling upgrade)
        help_text=_("Where the task was published to."),
    )
    started = models.DateTimeField(
        _("started"), null=True, blank=True, db_index=True, help_text=_("Empty while queued.")
    )
    finished = models.DateTimeField(
        _("finished"), null=True, blank=True, help_text=_("Empty while the task runs.")
    )
    last_seen = models.DateTimeField(
        _("last seen"),
        help_text=_("Last time the capturing worker wrote or said it is alive."),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    lines = models.PositiveIntegerField(
        _("lines"), default=0, help_text=_("Lines the task wrote (the highest seq).")
    )
    dropped = models.PositiveIntegerField(
        _("dropped"), default=0, help_text=_("Lines not stored: over the cap or lost in an outage.")
    )
    truncated = models.BooleanField(
        _("truncated"), default=False, help_text=_("More than CELERY_TASKLOG_MAX_LINES lines.")
    )
    interrupted = models.BooleanField(
        _("interrupted"), default=False, help_text=_("The worker died while the task ran.")
    )
    flush_token = models.CharField(
        _("flush token"),
        max_length=32,
        blank=True,
        editable=False,
        db_default="",
        help_text=_(
            "Written by every flush, so that a flush whose commit went unacknowledged "
            "recognises its own work when it is retried."
        ),
    )
    launched_by = models.CharField(
        _("launched by"), max_length=150, blank=True, help_text=_("Username of the publisher.")
    )
    launched_by_user_id = models.CharField(_("launched by user id"), max_length=64, blank=True)
    launched_from = models.CharField(
        _("launched from"),
        max_length=255,
        blank=True,
        help_text=_("Request path, or the origin of a task published outside a request."),
    )
    share_secret = models.CharField(
        _("share secret"),
        max_length=32,
        blank=True,
        editable=False,
        db_default="",
        help_text=_("Part of the key of this task's share links: changing it revokes them all."),
    )

    archive_name = models.CharField(
        _("archive"),
        max_length=255,
        blank=True,
        editable=False,
        db_default="",
        help_text=_(
            "Name of the verified object in the archive storage that holds the lines "
            "(CELERY_TASKLOG_ARCHIVE); set, the lines are read from it."
        ),
    )
    archived = models.DateTimeField(
        _("archived"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the lines left the database for the archive."),
    )

    objects = TaskLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("task log")
        verbose_name_plural = _("task logs")
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"{self.task_name or _('task')} {self.task_id}"

    @property
    def is_queued(self) -> bool:
        """Published, not started: a worker has not taken it (yet)."""
        return self.started is None and self.finished is None

    @property
    def is_running(self) -> bool:
        return self.started is not None and self.finished is None and not self.interrupted

    @property
    def duration(self):
        if self.finished is None or self.started is None:
            return None
        return self.finished - self.started

    @property
    def queue_wait(self):
        """How long the task waited for a worker, once it started."""
        if self.queued is None or self.started is None:
            return None
        return max(self.started - self.queued, timedelta(0))


class TaskLogLine(models.Model):
    """One line a task wrote; ``seq`` numbers lines per task in write order, from 1."""

    task_id = models.CharField(_("task id"), max_length=255)
    seq = models.PositiveIntegerField(_("seq"))
    timestamp = models.DateTimeField(_("timestamp"), help_text=_("When the line was written."))
    stream = models.CharField(_("stream"), max_length=6, choices=Stream.choices)
    level = models.PositiveSmallIntegerField(
        _("level"), null=True, blank=True, choices=Level.choices, help_text=_("Logging level.")
    )
    message = models.TextField(_("message"), blank=True)
    # An insert path that does not name these columns still works: "" and NULL by default.
    logger = models.CharField(
        _("logger"),
        max_length=255,
        blank=True,
        db_default="",
        help_text=_("Name of the logger of a logging record (stream log)."),
    )
    extra = models.JSONField(
        _("extra"),
        null=True,
        blank=True,
        help_text=_("The record's extra={} fields, made JSON-safe and bounded in size."),
    )

    task_day = models.DateField(
        _("task day"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Partition key: the UTC day the task was first recorded (tasklog.partitions)."),
    )

    objects = TaskLogLineQuerySet.as_manager()

    class Meta:
        verbose_name = _("task log line")
        verbose_name_plural = _("task log lines")
        ordering = ["task_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["task_id", "seq"], name="tasklog_line_task_seq_uniq"),
        ]
        indexes = [
            models.Index(fields=["timestamp"], name="tasklog_line_timestamp_idx"),
            # Databases without partial indexes (MariaDB) skip it: sections are read by a scan.
            models.Index(
                fields=["task_id", "seq"], condition=SECTION_LINES, name="tasklog_line_section_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} #{self.seq}"

    @property
    def level_name(self) -> str | None:
        return logging.getLevelName(self.level) if self.level is not None else None


class AccessToken(models.Model):
    """An API token: reads logs over HTTP as its user, within its scope, until it expires.

    Only the SHA-256 of the key is stored (the key is 32 random bytes, so a hash is as good as
    a slow one); the key itself is shown once, when it is made (see ``tokens.py``).
    """

    user = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tasklog_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(
        _("prefix"), max_length=16, editable=False, help_text=_("Start of the key, to tell it.")
    )
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    expires = models.DateTimeField(_("expires"))
    revoked = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True)
    scope_task_id = models.CharField(
        _("only task id"), max_length=255, blank=True, help_text=_("Empty: any task.")
    )
    scope_task_name = models.CharField(
        _("only task names matching"),
        max_length=255,
        blank=True,
        help_text=_("A glob such as reports.* ; empty: any task name."),
    )

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
