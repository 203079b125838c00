"""``manage.py tasklog_token create|list|revoke``: API tokens for the SSE, JSON and download."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from tabulate import tabulate

from tasklog import tokens
from tasklog.management.arguments import age
from tasklog.models import AccessToken
from tasklog.reading import local_time


class Command(BaseCommand):
    help = (
        "Create, list or revoke API tokens. A token reads logs as its user (the access policy "
        "applies), on the events, lines and download endpoints only."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="Make a token and print its key once.")
        create.add_argument("--user", required=True, help="Username the token reads as.")
        create.add_argument("--name", required=True, help="What the token is for.")
        create.add_argument("--expires", type=age, default=tokens.DEFAULT_LIFETIME, metavar="SPAN")
        create.add_argument("--task", default="", metavar="TASK_ID", help="Only this task.")
        create.add_argument("--task-name", default="", metavar="GLOB", help="e.g. 'reports.*'.")
        listing = actions.add_parser("list", help="Tokens, newest first; never their keys.")
        listing.add_argument("--user", help="Only this user's tokens.")
        revoke = actions.add_parser("revoke", help="Revoke tokens by id or key prefix.")
        revoke.add_argument("which", nargs="+", metavar="ID_OR_PREFIX")

    def handle(self, *args, action, **options):
        getattr(self, action)(**options)

    def create(self, *, user, name, expires, task, task_name, **options):
        model = get_user_model()
        account = model._default_manager.filter(**{model.USERNAME_FIELD: user}).first()
        if account is None:
            raise CommandError(f"No user {user!r}.")
        limits = (("--name", name, 100), ("--task", task, 255), ("--task-name", task_name, 255))
        for option, value, limit in limits:
            if len(value) > limit or "\x00" in value:
                raise CommandError(f"{option} must be at most {limit} characters, without NUL.")
        if not name.strip():
            raise CommandError("--name must not be empty.")
        token, key = tokens.create_token(
            account, name, expires_in=expires, task_id=task, task_name=task_name
        )
        self.stderr.write(
            f"Token {token.pk} ({token.prefix}…) for {user}, expires {local_time(token.expires)}. "
            "The key is shown this once; keep it secret:"
        )
        self.stdout.write(key)

    def list(self, *, user, **options):
        listed = AccessToken.objects.select_related("user")
        if user:
            listed = listed.filter(**{f"user__{get_user_model().USERNAME_FIELD}": user})
        now = timezone.now()
        rows = [
            (
                token.pk,
                token.prefix + "…",
                token.name,
                token.user.get_username(),
                tokens.scope_of(token),
                local_time(token.expires),
                local_time(token.last_used),
                tokens.status_of(token, now),
            )
            for token in listed
        ]
        headers = ("id", "key", "name", "user", "scope", "expires", "last used", "status")
        self.stdout.write(tabulate(rows, headers=headers, disable_numparse=True))

    def revoke(self, *, which: list[str], **options):
        ids = [value for value in which if value.isascii() and value.isdigit() and len(value) < 19]
        prefixes = [value for value in which if value not in ids]
        found = AccessToken.objects.filter(Q(pk__in=ids) | Q(prefix__in=prefixes))
        missing = set(which) - {str(pk) for pk in found.values_list("pk", flat=True)}
        missing -= set(found.values_list("prefix", flat=True))
        if missing:
            shown = ", ".join(sorted(repr(value[:40]) for value in missing))
            raise CommandError(f"No token has the id or prefix {shown}; none revoked.")
        self.stdout.write(f"Revoked {tokens.revoke_tokens(found)} token(s).")
