"""The launch page: start ``timed_print_task`` from the browser and go watch it."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from .forms import LaunchForm
from .tasks import timed_print_task


@staff_member_required
def launch(request):
    form = LaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        task_id = timed_print_task.delay(**form.cleaned_data).id
        try:
            return redirect(reverse("tasklog:task_log", args=[task_id]))
        except NoReverseMatch:  # tasklog.urls is not included in this project's URLconf
            return render(request, "example/launched.html", {"task_id": task_id})
    return render(request, "example/launch.html", {"form": form})
