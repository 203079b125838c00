"""The package as users get it: ``python -m build`` makes an sdist and a wheel that ``twine check``
accepts, and the wheel, installed (not editable) in a fresh virtualenv, runs in a new Django
project set up as the README says: its migrations, templates and static files come from the wheel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import tasklog

ROOT = Path(__file__).resolve().parent.parent
WHEEL = f"celery_tasklog-{tasklog.__version__}-py3-none-any.whl"
SDIST = f"celery_tasklog-{tasklog.__version__}.tar.gz"

SETTINGS = """
INSTALLED_APPS += ["django_celery_results", "django_celery_beat", "tasklog", "shop"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "tasklog.middleware.CeleryTaskLogMiddleware",
)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = True
"""
URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tasklog/", include("tasklog.urls")),
]
"""
CELERY_APP = """
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
app = Celery("mysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""
TASKS = """
from celery import shared_task

from tasklog.tasks import TerminalLoggingTask


@shared_task(bind=True, base=TerminalLoggingTask)
def rebuild_index(self):
    print("this line is stored and shown live <b>")
"""
# Run by ``manage.py shell``: one eager task, then its page as a staff user sees it.
RUN_AND_RENDER = """
import json
from importlib.metadata import version

from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client
from django.test.utils import setup_test_environment

import tasklog
from shop.tasks import rebuild_index

setup_test_environment()
result = rebuild_index.delay()
client = Client()
client.force_login(User.objects.create_superuser("admin", "admin@example.com", "admin"))
page = client.get(f"/tasklog/{result.id}/")
lines = client.get(f"/tasklog/{result.id}/lines/")
download = client.get(f"/tasklog/{result.id}/download/")
print(json.dumps({
    "tasklog": tasklog.__file__,
    "version": version("celery-tasklog"),
    "page_status": page.status_code,
    "page": page.content.decode(),
    "lines": lines.json(),
    "download": b"".join(download).decode(),
    "static": [finders.find(name) for name in ("tasklog/tasklog.css", "tasklog/tasklog.js")],
}))
"""


def run(command: list, cwd: Path | None = None, env: dict | None = None) -> str:
    """Stdout and stderr of ``command``, which must succeed."""
    finished = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, f"{command} failed:\n{finished.stdout}"
    return finished.stdout


def clean_env() -> dict[str, str]:
    """This machine's environment without anything pointing at the source tree or its tests."""
    dropped = ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_", "AMQP_")
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, str]:
    """``python -m build`` of the source tree (the sdist, then the wheel built from it): the
    output directory and what the build printed."""
    outdir = tmp_path_factory.mktemp("dist")
    output = run([sys.executable, "-m", "build", "--outdir", outdir, ROOT], env=clean_env())
    return outdir, output


@pytest.fixture(scope="module")
def dist(build) -> Path:
    return build[0]


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(build):
    dist, output = build
    assert {path.name for path in dist.iterdir()} == {SDIST, WHEEL}
    assert "absent from the `packages` configuration" not in output  # a future setuptools error

    checked = run([sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir()])

    assert checked.count("PASSED") == 2


def test_the_sdist_holds_the_changelog_and_no_partial_test_suite(dist):
    with tarfile.open(dist / SDIST) as sdist:
        names = {name.split("/", 1)[-1] for name in sdist.getnames()}

    assert {"CHANGELOG.md", "LICENSE", "README.md", "tasklog/static/tasklog/tasklog.js"} <= names
    assert not any(name.startswith("tests/") for name in names)


def test_the_wheel_holds_the_app_with_its_data_and_nothing_else(dist):
    names = set(zipfile.ZipFile(dist / WHEEL).namelist())

    assert {
        "tasklog/migrations/0001_initial.py",
        "tasklog/templates/tasklog/task_log.html",
        "tasklog/templates/admin/tasklog/tasklog/last_lines.html",
        "tasklog/static/tasklog/tasklog.css",
        "tasklog/static/tasklog/tasklog.js",
        "tasklog/management/commands/tasklog_show.py",
        "tasklog/py.typed",
    } <= names
    assert {name.split("/")[0] for name in names} == {
        "tasklog",
        f"celery_tasklog-{tasklog.__version__}.dist-info",
    }


def test_the_wheel_runs_a_captured_task_in_a_new_project(dist, tmp_path):
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = clean_env()
    run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    run([*pip, f"{dist / WHEEL}[remote]"], env=env)
    project = tmp_path / "project"
    project.mkdir()
    run([venv / "bin" / "django-admin", "startproject", "mysite", project], env=env)
    run([python, "manage.py", "startapp", "shop"], cwd=project, env=env)
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write(SETTINGS)
    (project / "mysite" / "urls.py").write_text(URLS)
    (project / "mysite" / "celery.py").write_text(CELERY_APP)
    (project / "mysite" / "__init__.py").write_text("from .celery import app as celery_app\n")
    (project / "shop" / "tasks.py").write_text(TASKS)

    migrated = run([python, "manage.py", "migrate"], cwd=project, env=env)
    shell = run([python, "manage.py", "shell", "-c", RUN_AND_RENDER], cwd=project, env=env)
    report = json.loads(shell.splitlines()[-1])  # after the shell's own notes

    assert "Applying tasklog.0001_initial... OK" in migrated
    site_packages = str(venv / "lib")
    assert report["tasklog"].startswith(site_packages), "imported from the wheel, not the tree"
    assert report["version"] == tasklog.__version__
    assert report["page_status"] == 200
    assert "<title>Log of shop.tasks.rebuild_index | Django site admin</title>" in report["page"]
    assert "/static/tasklog/tasklog.js" in report["page"]
    assert [line["message"] for line in report["lines"]["lines"]] == [
        "this line is stored and shown live <b>"
    ]
    assert report["download"].endswith("this line is stored and shown live <b>\n")
    assert all(path and path.startswith(site_packages) for path in report["static"])
    follow_help = run([venv / "bin" / "tasklog-follow", "--help"], cwd=tmp_path, env=env)
    assert "usage: tasklog-follow" in follow_help  # the console script needs no settings
