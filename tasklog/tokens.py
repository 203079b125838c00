"""API tokens: ``Authorization: Bearer <key>`` reads logs over HTTP as the token's user.

A key is ``tasklog_`` and 32 random bytes in base64url; only its SHA-256 is stored (for a key
of that entropy a fast hash is as safe as a slow one), with its first characters for display.
The access policy still applies to the token's user; a scope narrows it further to one task id
or to task names matching a glob. Last use is written at most once a minute per token.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from .models import AccessToken

KEY_PREFIX = "tasklog_"
MAX_KEY_LENGTH = 100  # a real key is 51 characters
PREFIX_LENGTH = len(KEY_PREFIX) + 6
LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_LIFETIME = timedelta(days=30)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    user,
    name: str,
    *,
    expires_in: timedelta = DEFAULT_LIFETIME,
    task_id: str = "",
    task_name: str = "",
) -> tuple[AccessToken, str]:
    """A new token and its key; the key is not stored and cannot be shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        user=user,
        name=name,
        prefix=key[:PREFIX_LENGTH],
        key_hash=key_hash(key),
        expires=timezone.now() + expires_in,
        scope_task_id=task_id,
        scope_task_name=task_name,
    )
    return token, key


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header; None without a bearer header."""
    if not authorization:
        return None
    scheme, _space, key = authorization.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def active_token(key: str, now: datetime | None = None) -> AccessToken | None:
    """The usable token of ``key``: known, not revoked, not expired, its user active."""
    if not key.startswith(KEY_PREFIX) or len(key) > MAX_KEY_LENGTH:
        return None
    now = now or timezone.now()
    token = (
        AccessToken.objects.select_related("user")
        .filter(key_hash=key_hash(key), revoked__isnull=True, expires__gt=now)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    record_use(token, now)
    return token


def record_use(token: AccessToken, now: datetime) -> None:
    """Write ``last_used``, unless it was written less than a minute ago."""
    if token.last_used is not None and now - token.last_used < LAST_USED_RESOLUTION:
        return
    AccessToken.objects.filter(pk=token.pk).filter(
        Q(last_used__isnull=True) | Q(last_used__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used=now)


def in_scope(token: AccessToken, task_id: str, task_name: str) -> bool:
    """Does the token's scope cover this task? An empty scope covers every task."""
    if token.scope_task_id and token.scope_task_id != task_id:
        return False
    return not token.scope_task_name or fnmatch.fnmatchcase(task_name, token.scope_task_name)


def revoke_tokens(tokens) -> int:
    """Revoke the tokens of a queryset that are not revoked yet; returns how many."""
    return tokens.filter(revoked__isnull=True).update(revoked=timezone.now())


def scope_of(token: AccessToken) -> str:
    """What the token may read, in words: one task, a task-name glob, or all tasks."""
    parts = [f"task {token.scope_task_id}"] if token.scope_task_id else []
    parts += [f"names {token.scope_task_name}"] if token.scope_task_name else []
    return ", ".join(parts) or "all tasks"


def status_of(token: AccessToken, now: datetime) -> str:
    if token.revoked is not None:
        return "revoked"
    return "expired" if token.expires <= now else "active"
