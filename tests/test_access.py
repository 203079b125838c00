"""The access policy, share links and API tokens, through the Django test client."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from tasklog import access, shares, tokens
from tasklog.checks import check_settings
from tasklog.models import AccessToken, TaskLog
from tests.logs import TASK_ID, make_log, make_result, make_user

pytestmark = pytest.mark.django_db

PAGE = "tasklog:task_log"
ENDPOINTS = ["tasklog:task_log_events", "tasklog:task_log_lines", "tasklog:task_log_download"]
ALL_VIEWS = [PAGE, *ENDPOINTS]
LAUNCHER_OR_STAFF = "tasklog.access.launcher_or_staff"
NOT_READABLE = {"error": "You may not read this task's log, or there is no such task."}
OTHER_TASK = "another-task"


def url(name: str, task_id: str = TASK_ID, **query) -> str:
    path = reverse(name, args=[task_id])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def only_yes_for(username):
    """A policy for the tests: only ``username`` reads, and only tasks that have a log."""
    return lambda user, log: user.get_username() == username and log is not None


class TestPolicy:
    @pytest.fixture
    def launched(self):
        customer = make_user("customer", staff=False, can_read_logs=False)
        make_log(messages=["hello"], launched_by_user_id=str(customer.pk), finished=timezone.now())
        make_log(OTHER_TASK, messages=["someone else's"], launched_by_user_id="999")
        return customer

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_the_launcher_reads_their_own_task(self, client, settings, launched, name):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        client.force_login(launched)
        assert client.get(url(name)).status_code == 200

    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_the_launcher_is_refused_another_task_as_if_it_did_not_exist(
        self, client, settings, launched, name
    ):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        client.force_login(launched)
        other, unknown = client.get(url(name, OTHER_TASK)), client.get(url(name, "no-such-task"))
        assert (other.status_code, other.json()) == (403, NOT_READABLE)
        assert (unknown.status_code, unknown.json()) == (403, NOT_READABLE)

    def test_the_refusal_page_is_the_same_for_another_and_an_unknown_task(
        self, client, settings, launched
    ):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        client.force_login(launched)
        other, unknown = client.get(url(PAGE, OTHER_TASK)), client.get(url(PAGE, "no-such-task"))
        assert other.status_code == unknown.status_code == 403
        assert other.content == unknown.content

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_the_default_policy_refuses_the_launcher(self, client, launched, name):
        client.force_login(launched)
        assert client.get(url(name)).status_code == 403

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_staff_reader_still_gets_404_for_an_unknown_task(self, reader, settings, name):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        assert reader.get(url(name, "no-such-task")).status_code == 404

    def test_staff_without_the_permission_is_told_which_one(self, client, launched):
        client.force_login(make_user("staff", can_read_logs=False))
        response = client.get(url("tasklog:task_log_lines"))
        assert response.status_code == 403
        assert "tasklog.view_tasklogline" in response.json()["error"]

    def test_an_inactive_launcher_is_refused(self, client, settings, launched):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        client.force_login(launched)
        launched.is_active = False
        launched.save()
        assert client.get(url("tasklog:task_log_lines")).status_code == 403

    def test_a_log_without_a_launcher_is_not_read_by_users_without_an_id(self, client, settings):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        make_log(messages=["published by beat"], launched_by_user_id="")
        client.force_login(make_user("nobody", staff=False, can_read_logs=False))
        assert client.get(url("tasklog:task_log_lines")).status_code == 403

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_a_custom_policy_decides_every_view(self, client, settings, name, monkeypatch):
        monkeypatch.setattr(access, "custom", only_yes_for("carol"), raising=False)
        settings.CELERY_TASKLOG_ACCESS = "tasklog.access.custom"
        make_log(messages=["x"], finished=timezone.now())
        client.force_login(make_user("carol", staff=False, can_read_logs=False))
        assert client.get(url(name)).status_code == 200
        client.force_login(make_user("dave"))  # a staff reader, whom this policy refuses
        assert client.get(url(name)).status_code == 403

    def test_can_read_asks_the_configured_policy(self, settings):
        log = make_log(messages=["x"], launched_by_user_id="41")
        user = make_user("u41", staff=False, can_read_logs=False)
        TaskLog.objects.filter(pk=log.pk).update(launched_by_user_id=str(user.pk))
        log.refresh_from_db()
        assert access.can_read(user, log) is False
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        assert access.can_read(user, log) is True
        assert access.can_read(user, None) is False

    def test_the_admin_stays_staff_only(self, client, settings, launched):
        settings.CELERY_TASKLOG_ACCESS = LAUNCHER_OR_STAFF
        client.force_login(launched)
        assert client.get(reverse("admin:tasklog_tasklog_changelist")).status_code == 302


class TestPolicyChecks:
    @pytest.mark.parametrize(
        ("value", "check_id", "message"),
        [
            ("tasklog.access.no_such_policy", "tasklog.E020", "cannot be imported"),
            ("nodots", "tasklog.E020", "must be a dotted path to a callable"),
            ("", "tasklog.E020", "must be a dotted path to a callable"),
            (42, "tasklog.E020", "must be a dotted path to a callable"),
            ("tasklog.access.PERMISSION", "tasklog.E021", "must name a callable"),
        ],
    )
    def test_a_bad_policy_is_reported(self, settings, value, check_id, message):
        settings.CELERY_TASKLOG_ACCESS = value
        [error] = check_settings()
        assert error.id == check_id
        assert error.msg.startswith(f"The setting CELERY_TASKLOG_ACCESS {message}")

    def test_a_bad_policy_falls_back_to_the_default(self, settings):
        settings.CELERY_TASKLOG_ACCESS = "tasklog.access.PERMISSION"
        assert access.policy() is access.staff_with_permission

    @pytest.mark.abuse
    @pytest.mark.parametrize(
        "value",
        ["x." * 50_000, "tasklog.accès.politique", "os.system\x00", "..", "tasklog.", "a.b;c"],
    )
    def test_hostile_policy_paths_are_errors_not_crashes(self, settings, value):
        settings.CELERY_TASKLOG_ACCESS = value
        [error] = check_settings()
        assert error.id == "tasklog.E020"

    @pytest.mark.parametrize("value", [0, 59, "abc", 2.5, 366 * 24 * 3600, True])
    def test_a_bad_share_max_age_is_reported(self, settings, value):
        settings.CELERY_TASKLOG_SHARE_MAX_AGE = value
        [error] = check_settings()
        assert error.id == "tasklog.E022"


class TestShareLinks:
    @pytest.fixture
    def log(self):
        make_result(status="SUCCESS")
        make_log(OTHER_TASK, messages=["other"])
        return make_log(messages=["shared line"], finished=timezone.now())

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_a_link_opens_every_view_of_its_task_without_a_login(self, client, log, name):
        response = client.get(url(name, share=shares.share_token(log)))
        assert response.status_code == 200

    @pytest.mark.parametrize("name", ALL_VIEWS)
    def test_a_link_does_not_open_another_task(self, client, log, name):
        response = client.get(url(name, OTHER_TASK, share=shares.share_token(log)))
        assert response.status_code == 403

    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_an_expired_link_is_403(self, client, log, name, monkeypatch):
        token = shares.share_token(log, timedelta(hours=2))
        later = signing.time.time() + 2 * 3600 + 5
        monkeypatch.setattr(signing.time, "time", lambda: later)
        response = client.get(url(name, share=token))
        assert response.status_code == 403
        assert response.json() == {"error": "This share link is invalid or has expired."}

    def test_lowering_the_maximum_shortens_links_already_made(self, client, log, settings):
        token = shares.share_token(log, timedelta(days=3))
        settings.CELERY_TASKLOG_SHARE_MAX_AGE = 60
        assert shares.admits(token, log) is True
        with pytest.MonkeyPatch.context() as patch:
            later = signing.time.time() + 61
            patch.setattr(signing.time, "time", lambda: later)
            assert shares.admits(token, log) is False

    def test_revoking_rotates_the_secret_and_kills_every_link(self, client, log):
        token = shares.share_token(log)
        shares.revoke(log)
        assert client.get(url("tasklog:task_log_lines", share=token)).status_code == 403
        fresh = shares.share_token(TaskLog.objects.get(pk=log.pk))
        assert client.get(url("tasklog:task_log_lines", share=fresh)).status_code == 200

    def test_a_new_secret_key_kills_every_link(self, client, log, settings):
        token = shares.share_token(log)
        settings.SECRET_KEY = "rotated-" + settings.SECRET_KEY
        assert client.get(url("tasklog:task_log_lines", share=token)).status_code == 403

    def test_a_share_page_carries_the_link_to_its_endpoints_and_offers_no_new_link(
        self, client, log
    ):
        token = shares.share_token(log)
        html = client.get(url(PAGE, share=token)).content.decode()
        query = urlencode({"share": token})
        assert f"download/?{query}" in html
        assert f"events/?{query}" in html
        assert "tasklog-share" not in html

    def test_a_reader_gets_a_copy_share_link_button(self, reader, log):
        html = reader.get(url(PAGE)).content.decode()
        start = html.index('data-share-url="') + len('data-share-url="')
        link = html[start : html.index('"', start)]
        assert link.startswith(f"http://testserver/tasklog/{TASK_ID}/?share=")
        assert shares.admits(unquote(link.split("share=")[1]), TaskLog.objects.get(pk=log.pk))

    def test_a_link_longer_than_allowed_cannot_be_made(self, log):
        with pytest.raises(shares.ShareError, match="SHARE_MAX_AGE"):
            shares.share_token(log, timedelta(days=8))

    @pytest.mark.abuse
    @pytest.mark.parametrize(
        "altered",
        [
            lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
            lambda t: "999999999" + t[t.index(":") :],
            lambda t: t + "x" * 100_000,
            lambda t: "ünïcödé:" + t,
            lambda t: "",
            lambda t: "%00",
            lambda t: "'%20OR%201=1--",
        ],
    )
    def test_altered_links_are_403(self, client, log, altered):
        response = client.get(url("tasklog:task_log_lines", share=altered(shares.share_token(log))))
        assert response.status_code == 403

    @pytest.mark.abuse
    def test_a_forged_link_for_an_unknown_task_is_403_not_404(self, client, log):
        forged = shares.share_token(log)
        response = client.get(url("tasklog:task_log_lines", "no-such-task", share=forged))
        assert response.status_code == 403


class TestTokens:
    @pytest.fixture
    def log(self):
        make_result(status="SUCCESS")
        return make_log(
            messages=["token-visible line"], task_name="reports.export", finished=timezone.now()
        )

    @pytest.fixture
    def key(self, log):
        return tokens.create_token(make_user("robot"), "ci")[1]

    @pytest.mark.parametrize("name", ENDPOINTS)
    def test_a_valid_token_reads_the_endpoints(self, client, key, name):
        response = client.get(url(name), headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200

    def test_a_token_is_refused_on_the_page(self, client, key):
        response = client.get(url(PAGE), headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401
        assert "API tokens are not accepted on pages" in response.content.decode()
        assert "token-visible line" not in response.content.decode()

    def test_only_the_hash_is_stored(self, key):
        token = AccessToken.objects.get()
        assert key not in (token.key_hash, token.prefix) and key.startswith(token.prefix)
        assert token.key_hash == tokens.key_hash(key)

    @pytest.mark.parametrize(
        "change",
        [
            {"revoked": timezone.now()},
            {"expires": timezone.now() - timedelta(seconds=1)},
        ],
    )
    def test_a_revoked_or_expired_token_is_401(self, client, key, change):
        AccessToken.objects.update(**change)
        response = client.get(
            url("tasklog:task_log_lines"), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    def test_the_policy_applies_to_the_token_user(self, client, log):
        _token, key = tokens.create_token(make_user("no-perm", can_read_logs=False), "x")
        response = client.get(
            url("tasklog:task_log_lines"), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("scope", "allowed"),
        [
            ({"task_id": TASK_ID}, True),
            ({"task_id": OTHER_TASK}, False),
            ({"task_name": "reports.*"}, True),
            ({"task_name": "billing.*"}, False),
        ],
    )
    def test_the_scope_narrows_the_token(self, client, log, scope, allowed):
        _token, key = tokens.create_token(make_user("scoped"), "x", **scope)
        response = client.get(
            url("tasklog:task_log_lines"), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == (200 if allowed else 403)

    def test_last_use_is_written_at_most_once_a_minute(self, client, key):
        auth = {"Authorization": f"Bearer {key}"}
        client.get(url("tasklog:task_log_lines"), headers=auth)
        first = AccessToken.objects.get().last_used
        assert first is not None
        client.get(url("tasklog:task_log_lines"), headers=auth)
        assert AccessToken.objects.get().last_used == first
        AccessToken.objects.update(last_used=first - timedelta(minutes=2))
        client.get(url("tasklog:task_log_lines"), headers=auth)
        assert AccessToken.objects.get().last_used > first - timedelta(minutes=2)

    @pytest.mark.abuse
    @pytest.mark.parametrize(
        "header",
        [
            "Bearer ",
            "Bearer tasklog_" + "A" * 100_000,
            "Bearer tasklog_ünïcödé",
            "Bearer tasklog_' OR '1'='1",
            "bearer   tasklog_nope",
            "Bearer tasklog_\t\tx",
        ],
    )
    def test_hostile_bearer_headers_are_401(self, client, key, header):
        response = client.get(url("tasklog:task_log_lines"), headers={"Authorization": header})
        assert response.status_code == 401

    @pytest.mark.abuse
    def test_a_non_bearer_authorization_header_is_ignored(self, client, log):
        response = client.get(
            url("tasklog:task_log_lines"), headers={"Authorization": "Basic dXNlcjpwYXNz"}
        )
        assert (response.status_code, response.json()) == (403, NOT_READABLE)


@pytest.mark.django_db
def test_a_log_written_again_under_the_same_id_does_not_revive_old_links(client):
    token = shares.share_token(make_log(messages=["first life"]))
    TaskLog.objects.all().delete()
    make_log(messages=["second life"])
    assert client.get(url("tasklog:task_log_lines", share=token)).status_code == 403


def test_api_tokens_stay_with_the_users_when_logs_have_their_own_database(settings):
    from tasklog.routers import TaskLogRouter

    settings.CELERY_TASKLOG_DATABASE = "logs"
    router = TaskLogRouter()
    assert router.db_for_read(AccessToken) is None  # the default database, with auth_user
    assert router.db_for_write(TaskLog) == "logs"
    assert router.allow_migrate("default", "tasklog", model_name="accesstoken") is True
    assert router.allow_migrate("logs", "tasklog", model_name="accesstoken") is False
    assert router.allow_migrate("logs", "tasklog", model_name="tasklog") is True
