"""The launch page: start ``timed_print_task`` from the browser and watch it right there.

The task is known from the moment ``delay()`` returns (celery-tasklog records it as queued), so
the page redirects at once to itself with ``?task=<id>`` and shows the live log inline with
``{% tasklog_live %}``: "waiting in queue" until a worker takes it, then its lines.
"""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from .forms import LaunchForm
from .tasks import timed_print_task

# Logs shown side by side at most (?task=...&task=...): each one follows its task.
MAX_SHOWN = 4


@staff_member_required
def launch(request):
    form = LaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        task_id = timed_print_task.delay(**form.cleaned_data).id
        return HttpResponseRedirect(reverse("launch") + "?" + urlencode({"task": task_id}))
    shown = request.GET.getlist("task")[:MAX_SHOWN]
    return render(request, "example/launch.html", {"form": form, "task_ids": shown})
