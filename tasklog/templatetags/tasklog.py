"""``{% load tasklog %}{% tasklog_live task_id %}``: a task's live log in any template.

It renders the component of the task page (``live.py``, ``tasklog/live.html``) with its CSS and
script, styled by ``--tasklog-*`` custom properties and independent of the admin's CSS; several
may share a page. A user the access policy (``access.can_read``) turns away gets a short refusal,
never a line, and the same one whether the task exists or not.
"""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from ..access import can_read
from ..live import component_context
from ..models import TaskLog
from ..results import result_for
from ..urls import MAX_TASK_ID_LENGTH

register = template.Library()


@register.inclusion_tag("tasklog/live.html", takes_context=True)
def tasklog_live(context, task_id) -> dict:
    """The live log of ``task_id`` for the user of the page's ``request``."""
    request = context.get("request")
    task_id = str(task_id)
    refused = {"with_assets": True, "refused": _("You may not read the log of this task.")}
    if (
        not hasattr(request, "user")
        or not 0 < len(task_id) <= MAX_TASK_ID_LENGTH
        or "\x00" in task_id
    ):
        return refused
    log = TaskLog.objects.find(task_id)
    if not can_read(request.user, log):
        return refused
    return {"with_assets": True, **component_context(task_id, log, result_for(task_id))}
