"""ASGI entry point of the example project: ``uvicorn example.asgi:application``.

Live log pages stream Server-Sent Events, which an async server serves without pinning a
thread per reader. Static files (the admin's CSS, tasklog's JavaScript) are served by Django
itself here so that the demo needs nothing else; a real site lets whitenoise or its web server
serve them.
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

application = ASGIStaticFilesHandler(get_asgi_application())
