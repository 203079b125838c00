"""ASGI entry point of the example project: ``uvicorn example.asgi:application``.

Live log pages stream Server-Sent Events, which an async server serves without pinning a
thread per reader (``shared_thread_for_live_logs``: their sync middleware shares one thread).
Static files (the admin's CSS, tasklog's JavaScript) are served by Django itself here
(``ASGIStaticFilesHandler``) so that the demo needs nothing else; a real site lets whitenoise
or its web server serve them (docs/web.md).
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

django_application = get_asgi_application()

from tasklog.asgi import shared_thread_for_live_logs  # noqa: E402 (needs the settings)

application = ASGIStaticFilesHandler(shared_thread_for_live_logs(django_application))
