"""Settings of the test suite: SQLite by default; PostgreSQL or MySQL/MariaDB, and Redis, when
their URLs are set."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "celery-tasklog-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "django_celery_beat",
    "tasklog",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tasklog.middleware.CeleryTaskLogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "sqlite:///:memory:"), conn_max_age=0
    )
}
# As the example project: SQLite with concurrent writers (a worker, the web server) waits for
# the write lock instead of failing with "database is locked". The journal stays SQLite's
# default (the example's WAL is measured apart by benchmarks/ingest.py).
SQLITE_OPTIONS = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # Django connects in utf8mb4; the tables must be too (MySQL's "utf8" holds no emoji).
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
# A second database, for the tests of CELERY_TASKLOG_DATABASE (logs kept out of the main one).
DATABASES["logs"] = {
    **DATABASES["default"],
    "NAME": DATABASES["default"]["NAME"]
    if DATABASES["default"]["NAME"] == ":memory:"
    else f"{DATABASES['default']['NAME']}_logs",
}
# SQLite beside the server, as the example project configures it: the embedded default's own
# insert path (tasklog/capture/bulk.py) is tested on every run, whatever DATABASE_URL names.
DATABASES["sqlite"] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": ":memory:",
    "OPTIONS": SQLITE_OPTIONS,
}
if os.environ.get("TASKLOG_WORKER_DATABASE_NAME"):
    # A worker subprocess started by the tests uses pytest-django's test database.
    DATABASES["default"]["NAME"] = os.environ["TASKLOG_WORKER_DATABASE_NAME"]

STATIC_URL = "/static/"

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
