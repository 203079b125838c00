"""The launch page: start ``timed_print_task`` from the browser and go watch it."""

import time

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render

from tasklog.models import TaskLog
from tasklog.results import result_for

from .forms import LaunchForm
from .tasks import timed_print_task

# How long the page waits for a worker to take the task: its log page exists from then on.
LAUNCH_WAIT = 5.0


@staff_member_required
def launch(request):
    form = LaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        task_id = timed_print_task.delay(**form.cleaned_data).id
        if wait_until_started(task_id, LAUNCH_WAIT):
            return redirect("tasklog:task_log", task_id)
        return render(request, "example/launched.html", {"task_id": task_id})
    return render(request, "example/launch.html", {"form": form})


def wait_until_started(task_id: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while TaskLog.objects.find(task_id) is None and result_for(task_id) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
