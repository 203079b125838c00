"""A run whose worker died reads as INTERRUPTED at once for the commands and the admin.

The run is silent for ``CELERY_TASKLOG_STALE_AFTER`` and no sweep has closed it yet: every reader
asks ``results.effective_state``, so none of them shows STARTED until the daily sweep.
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasklog.models import TaskLog
from tests.rows import make_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def silent_run(settings):
    settings.CELERY_TASKLOG_STALE_AFTER = 60
    make_log("dead", rows=["last words"], finished=None, last_seen=timezone.now() - timedelta(61))
    TaskResult.objects.create(task_id="dead", status="STARTED")


def test_show_says_interrupted(silent_run):
    out = StringIO()
    call_command("tasklog_show", "dead", stdout=out)
    assert re.search(r"^State +INTERRUPTED$", out.getvalue(), re.MULTILINE)
    out = StringIO()
    call_command("tasklog_show", "--list", stdout=out)
    assert "INTERRUPTED" in out.getvalue()


def test_the_admin_list_says_interrupted(silent_run, admin_client):
    html = admin_client.get(reverse("admin:tasklog_tasklog_changelist")).content.decode()
    assert '<td class="field-state">INTERRUPTED</td>' in html


def test_nothing_is_written_by_reading(silent_run):
    call_command("tasklog_show", "dead", stdout=StringIO())
    assert TaskLog.objects.get(task_id="dead").interrupted is False
