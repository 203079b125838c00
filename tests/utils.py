"""Small readers of what the capture stored, shared by the test modules."""

from tasklog.models import TaskLog, TaskLogLine


def stored(task_id: str) -> list[tuple[int, str, str]]:
    """``(seq, stream, message)`` of every stored line of a task, in seq order."""
    return list(
        TaskLogLine.objects.for_task(task_id)
        .order_by("seq")
        .values_list("seq", "stream", "message")
    )


def messages(task_id: str, stream: str | None = None) -> list[str]:
    return [
        message for _seq, line_stream, message in stored(task_id) if stream in (None, line_stream)
    ]


def log_of(task_id: str) -> TaskLog:
    return TaskLog.objects.get(task_id=task_id)
