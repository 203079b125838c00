"""celery-tasklog: the stdout, stderr and logging of Celery tasks, stored and shown live.

``tasklog.group("Title")`` is imported on first use, so ``import tasklog`` loads no Django.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["group"]


def __getattr__(name: str):
    if name == "group":
        from .sections import group

        return group
    raise AttributeError(f"module 'tasklog' has no attribute {name!r}")
