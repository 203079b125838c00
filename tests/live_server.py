"""The test project served by a real uvicorn (ASGI, static files included) in a thread.

It can be stopped abruptly and started again on the same port, as a deploy restarts a site.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

START_TIMEOUT = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        app = ASGIStaticFilesHandler(get_asgi_application())
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=asyncio.run, args=(self.serve(),), name="uvicorn", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    async def serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def stop(self, *, abruptly: bool = False) -> None:
        """Stop serving; ``abruptly`` cuts open connections at once, as a crash would (a graceful
        stop lets a response being streamed run on until it ends)."""
        if abruptly:
            self.loop.call_soon_threadsafe(self.cut_connections)
        self.server.should_exit = True
        self.server.force_exit = abruptly
        self.thread.join(START_TIMEOUT)

    def cut_connections(self) -> None:
        for connection in list(self.server.server_state.connections):
            connection.transport.abort()
