"""Share links: a signed, expiring, read-only key to one task's log, for readers without a login.

A link's token is ``django.core.signing.TimestampSigner`` output over its lifetime in seconds,
under a salt that names the task and its ``TaskLog.share_secret``. So a token opens that task
only, until ``created + lifetime`` (never beyond ``CELERY_TASKLOG_SHARE_MAX_AGE``, read when the
link is used), and stops working when the task's secret is rotated (``tasklog_share --revoke``)
or ``SECRET_KEY`` changes (without the old key in ``SECRET_KEY_FALLBACKS``).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core import signing

from .conf import settings
from .models import TaskLog

DEFAULT_AGE = timedelta(hours=24)
MAX_TOKEN_LENGTH = 100  # a real token is about 30 characters
QUERY_PARAMETER = "share"


class ShareError(ValueError):
    """A share link cannot be made as asked; the message says why."""


def signer(task_id: str, secret: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=f"tasklog.share:{secret}:{task_id}")


def lifetime(requested: timedelta | None) -> int:
    """Seconds a new link lives: the default (24 h, or the maximum if less), at most the maximum."""
    maximum = settings.SHARE_MAX_AGE
    if requested is None:
        return min(int(DEFAULT_AGE.total_seconds()), maximum)
    seconds = int(requested.total_seconds())
    if seconds < 1 or seconds > maximum:
        raise ShareError(
            f"A share link lives from 1 second to CELERY_TASKLOG_SHARE_MAX_AGE ({maximum} s), "
            f"not {seconds} s."
        )
    return seconds


def share_token(log: TaskLog, expires_in: timedelta | None = None) -> str:
    """A new token for ``log``'s task, valid for ``expires_in`` (default 24 h)."""
    seconds = lifetime(expires_in)
    return signer(log.task_id, secret_of(log)).sign(str(seconds))


def secret_of(log: TaskLog) -> str:
    """The task's share secret, drawn when its first link is made.

    Never empty in a link, so a log deleted and written again under the same task id does not
    bring its old links back. Two first links made at once agree on one secret.
    """
    if not log.share_secret:
        TaskLog.objects.filter(pk=log.pk, share_secret="").update(
            share_secret=secrets.token_hex(16)
        )
        log.share_secret = (
            TaskLog.objects.filter(pk=log.pk).values_list("share_secret", flat=True).get()
        )
    return log.share_secret


def admits(token: str, log: TaskLog | None) -> bool:
    """Does ``token`` open ``log`` now? False for another task, an altered or expired token."""
    if log is None or not log.share_secret:
        return False
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return False
    link = signer(log.task_id, log.share_secret)
    try:
        seconds = link.unsign(token)
        if not (seconds.isascii() and seconds.isdigit()):
            return False
        link.unsign(token, max_age=min(int(seconds), settings.SHARE_MAX_AGE))
    except signing.BadSignature:  # SignatureExpired is one too
        return False
    return True


def revoke(log: TaskLog) -> None:
    """Rotate the task's share secret: every link made for it so far stops working."""
    log.share_secret = secrets.token_hex(16)
    TaskLog.objects.filter(pk=log.pk).update(share_secret=log.share_secret)
