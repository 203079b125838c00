"""The two tables: one ``TaskLog`` per task id and its numbered ``TaskLogLine`` rows.

A task's state is not stored here: it comes from django-celery-results' ``TaskResult``
(see ``results.py``), so there is one truth about whether a task succeeded.
"""

from __future__ import annotations

import logging

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
    """One row per task id; retries and redeliveries are further attempts of the same row."""

    task_id = models.CharField(
        _("task id"), max_length=255, unique=True, help_text=_("Celery id of the task.")
    )
    task_name = models.CharField(_("task name"), max_length=255, blank=True, db_index=True)
    worker = models.CharField(
        _("worker"), max_length=255, blank=True, help_text=_("Hostname of the last worker.")
    )
    started = models.DateTimeField(_("started"), db_index=True)
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

    objects = TaskLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("task log")
        verbose_name_plural = _("task logs")
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"{self.task_name or _('task')} {self.task_id}"

    @property
    def is_running(self) -> bool:
        return self.finished is None and not self.interrupted

    @property
    def duration(self):
        if self.finished is None:
            return None
        return self.finished - self.started


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
