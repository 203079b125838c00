"""Celery worker pools as tasklog sees them: the one module that knows pool names and kinds.

A pool reaches tasklog in every form Celery accepts (an alias such as ``"gevent"``, a
``"module:Class"`` path, a pool class) and is named by Celery's own alias table
(``celery.concurrency.ALIASES``): a class, including a subclass of a Celery pool, by the alias of
the nearest Celery pool it derives from. What tasklog needs to know of a pool is whether tasks
share one process at the same time, since then no task can own the process's file descriptors.
"""

from __future__ import annotations

from celery import concurrency

DEFAULT_POOL = "prefork"
# Pools running several tasks at once in one process (threads or greenlets).
TASKS_SHARE_A_PROCESS = frozenset({"threads", "gevent", "eventlet"})
# "custom" points at whatever CELERY_CUSTOM_WORKER_POOL names, so it names no kind of pool.
INDIRECT_ALIASES = frozenset({"custom"})


def celery_pool_aliases() -> dict[str, str]:
    """``{"module:Class": alias}`` of Celery's pools; the first alias of a path wins
    (``prefork`` rather than its compatibility alias ``processes``)."""
    aliases: dict[str, str] = {}
    for alias, path in concurrency.ALIASES.items():
        if path and alias not in INDIRECT_ALIASES:
            aliases.setdefault(path, alias)
    return aliases


def pool_name(pool: str | type | None) -> str:
    """Celery's alias of ``pool`` without importing anything (safe for names a remote worker
    reports): an alias or a Celery pool's path is named by its alias, a class by the nearest
    Celery pool in its ancestry, anything else as given."""
    if pool is None or pool == "":
        return DEFAULT_POOL
    aliases = celery_pool_aliases()
    if isinstance(pool, type):
        for ancestor in pool.__mro__:
            alias = aliases.get(f"{ancestor.__module__}:{ancestor.__qualname__}")
            if alias:
                return alias
        return f"{pool.__module__}:{pool.__qualname__}"
    pool = str(pool)
    if pool in INDIRECT_ALIASES:
        return pool
    return aliases.get(concurrency.ALIASES.get(pool) or pool, pool)


def configured_pool_name(pool: str | type | None) -> str:
    """``pool_name`` of a pool from the configuration or a starting worker, importing a path
    (or ``custom``) as the worker does, so that a subclass of a Celery pool is known by its
    base. A name that does not import is returned as given: refusing it is Celery's business."""
    try:
        implementation = concurrency.get_implementation(pool)
    except Exception:  # any import error of a name Celery will refuse itself
        return pool_name(pool)
    return pool_name(implementation if isinstance(implementation, type) else pool)


def tasks_share_a_process(name: str) -> bool:
    """Whether the pool named ``name`` (by ``pool_name``) runs several tasks at once in one
    process: tasks then share file descriptors 1 and 2 and only per-context routing holds."""
    return name in TASKS_SHARE_A_PROCESS
