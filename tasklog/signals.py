"""Celery signal wiring (filled in by the capture engine)."""


def connect_signals() -> None:
    return None
