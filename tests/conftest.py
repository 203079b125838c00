"""Fixtures of the integration tests: real Celery workers on PostgreSQL and Redis.

A test marked ``integration`` skips when the services are missing, and fails instead under
``CI=true``. Each one starts with an empty broker. Tests that start workers get pytest-django's
``transactional_db``: a worker process cannot see rows inside the test's transaction.
"""

from __future__ import annotations

import pytest

from tests import harness


def pytest_report_header(config) -> str:
    from django.db import connection

    return f"database: {connection.vendor} ({connection.settings_dict['ENGINE']})"


def pytest_collection_modifyitems(config, items) -> None:
    """Deselect the tests marked ``postgresql`` on another database, and say how many."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    postgresql_only = [item for item in items if item.get_closest_marker("postgresql")]
    if not postgresql_only:
        return
    config.hook.pytest_deselected(items=postgresql_only)
    items[:] = [item for item in items if not item.get_closest_marker("postgresql")]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"{len(postgresql_only)} PostgreSQL-only tests deselected on {connection.vendor}"
        )


@pytest.fixture(autouse=True)
def _integration_services(request):
    if request.node.get_closest_marker("integration") is None:
        yield
        return
    harness.require_services()
    harness.flush_broker()
    yield
    from tasklog.queued import release_connection

    release_connection()  # the publisher's helper connection: the test database must be droppable


@pytest.fixture(autouse=True)
def _no_listener_left():
    """A live stream on PostgreSQL starts the process's listener (``tasklog.push``); it holds a
    connection to the test database, which must be droppable at the end."""
    yield
    from tasklog.push import stop_listeners

    stop_listeners()


@pytest.fixture
def celery_app():
    """``tests.celery_app.app``, made current and configured to the test broker."""
    from tests.celery_app import app

    app.set_current()
    return app


@pytest.fixture
def worker_factory(transactional_db, celery_app, tmp_path):
    """``start_worker(pool="prefork", concurrency=2, env=None, loglevel="INFO")``.

    Each call starts a real ``celery worker`` process on the test database and returns its
    ``WorkerProcess`` once it answers ping. All of them are stopped at teardown; their output is
    printed then, so pytest shows it for a failing test.
    """
    from django.db import connection

    workers: list[harness.WorkerProcess] = []

    def start_worker(
        pool: str = "prefork",
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        loglevel: str = "INFO",
    ) -> harness.WorkerProcess:
        worker = harness.start_worker(
            celery_app,
            tmp_path,
            connection.settings_dict["NAME"],
            pool=pool,
            concurrency=concurrency,
            env=env,
            loglevel=loglevel,
        )
        workers.append(worker)
        return worker

    yield start_worker
    for worker in workers:
        worker.stop()
        print(f"--- output of worker {worker.nodename} ---\n{worker.output()}")


@pytest.fixture
def reader(client):
    """The test client logged in as a staff user allowed to read logs."""
    from tests.logs import make_user

    client.force_login(make_user("reader"))
    return client
