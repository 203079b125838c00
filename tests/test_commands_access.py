"""``tasklog_share`` and ``tasklog_token``, and the API token admin."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tasklog import shares, tokens
from tasklog.models import AccessToken, TaskLog
from tests.logs import TASK_ID, make_log, make_user

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["share"][0]


class TestShareCommand:
    def test_prints_a_link_that_lasts_as_long_as_asked(self, monkeypatch):
        make_log(messages=["x"])
        link, _err = run("tasklog_share", TASK_ID, "--expires", "2h", "--site", "https://s.test/")
        log = TaskLog.objects.get()
        assert link.startswith(f"https://s.test/tasklog/{TASK_ID}/?share=")
        assert shares.admits(token_of(link), log)
        later = signing.time.time() + 2 * 3600 + 1
        monkeypatch.setattr(signing.time, "time", lambda: later)
        assert not shares.admits(token_of(link), log)

    def test_revoke_ends_the_links_made_before(self):
        make_log(messages=["x"])
        link, _err = run("tasklog_share", TASK_ID)
        out, _err = run("tasklog_share", TASK_ID, "--revoke")
        assert "revoked" in out
        assert not shares.admits(token_of(link), TaskLog.objects.get())

    def test_refuses_more_than_the_maximum(self):
        make_log(messages=["x"])
        with pytest.raises(CommandError, match="SHARE_MAX_AGE"):
            run("tasklog_share", TASK_ID, "--expires", "30d")

    def test_a_task_without_a_log_has_nothing_to_share(self):
        with pytest.raises(CommandError, match="has no log"):
            run("tasklog_share", "no-such-task")

    @pytest.mark.abuse
    @pytest.mark.parametrize("span", ["", "2", "-2h", "2 weeks", "9" * 40 + "d", "٢h", "0s"])
    def test_bad_spans_are_usage_errors(self, span):
        make_log(messages=["x"])
        with pytest.raises(CommandError, match="span of time"):
            run("tasklog_share", TASK_ID, f"--expires={span}")


class TestTokenCommand:
    def test_create_prints_the_key_once_and_stores_its_hash(self):
        make_user("robot")
        key, err = run("tasklog_token", "create", "--user", "robot", "--name", "ci")
        key = key.strip()
        token = AccessToken.objects.get()
        assert token.key_hash == tokens.key_hash(key) and "keep it secret" in err
        assert tokens.active_token(key) == token
        listing, _err = run("tasklog_token", "list")
        assert key not in listing and token.prefix in listing and "active" in listing

    def test_scope_and_expiry_options(self):
        make_user("robot")
        run(
            "tasklog_token", "create", "--user", "robot", "--name", "export",
            "--expires", "2h", "--task-name", "reports.*",
        )  # fmt: skip
        token = AccessToken.objects.get()
        assert token.scope_task_name == "reports.*"
        expected = timezone.now() + timedelta(hours=2)
        assert abs((token.expires - expected).total_seconds()) < 60

    def test_revoke_by_id_and_by_prefix(self):
        user = make_user("robot")
        first, first_key = tokens.create_token(user, "a")
        second, second_key = tokens.create_token(user, "b")
        out, _err = run("tasklog_token", "revoke", str(first.pk), second.prefix)
        assert "Revoked 2" in out
        assert tokens.active_token(first_key) is None and tokens.active_token(second_key) is None
        assert "revoked" in run("tasklog_token", "list", "--user", "robot")[0]

    @pytest.mark.abuse
    @pytest.mark.parametrize("which", ["99999999999999999999999", "nope", "ünï", "1' OR '1'='1"])
    def test_revoking_an_unknown_token_revokes_nothing(self, which):
        _token, key = tokens.create_token(make_user("robot"), "a")
        with pytest.raises(CommandError, match="none revoked"):
            run("tasklog_token", "revoke", which, "1")
        assert tokens.active_token(key) is not None

    def test_unknown_user(self):
        with pytest.raises(CommandError, match="No user"):
            run("tasklog_token", "create", "--user", "ghost", "--name", "x")

    @pytest.mark.abuse
    @pytest.mark.parametrize(
        ("option", "value"), [("--name", "n" * 101), ("--task", "t" * 256), ("--name", "a\x00b")]
    )
    def test_oversized_or_nul_values_are_refused(self, option, value):
        make_user("robot")
        args = ["tasklog_token", "create", "--user", "robot", "--name", "ok", option, value]
        with pytest.raises(CommandError, match=option):
            run(*args)
        assert not AccessToken.objects.exists()


class TestTokenAdmin:
    def test_lists_and_revokes_tokens_without_ever_showing_a_key(self, admin_client):
        token, key = tokens.create_token(make_user("robot"), "nightly export")
        listing = admin_client.get(reverse("admin:tasklog_accesstoken_changelist"))
        html = listing.content.decode()
        assert "nightly export" in html and token.prefix in html and key not in html
        assert (
            token.key_hash
            not in admin_client.get(
                reverse("admin:tasklog_accesstoken_change", args=[token.pk])
            ).content.decode()
        )
        admin_client.post(
            reverse("admin:tasklog_accesstoken_changelist"),
            {"action": "revoke", "_selected_action": [token.pk]},
        )
        assert tokens.active_token(key) is None

    def test_tokens_cannot_be_added_in_the_admin(self, admin_client):
        response = admin_client.get(reverse("admin:tasklog_accesstoken_add"))
        assert response.status_code == 403
