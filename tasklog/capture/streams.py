"""Where output enters the capture: the process-wide stdout/stderr proxies, the logging
handler, and (opt-in) the process's file descriptors 1 and 2.

``sys.stdout`` is shared by every thread, so it is never swapped per task: one proxy is
installed for the life of the process and asks the context which run a write belongs to.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading

from ..models import Stream
from .context import active_capture, bypass, health
from .lines import cut_line, storable_level
from .records import extra_fields, logger_name

_install_lock = threading.Lock()


class TaskStreamProxy:
    """Stands for ``sys.stdout`` or ``sys.stderr``: writes inside a task go to that task's log,
    all others to the original stream untouched.

    Inside a task it reports ``isatty() == False``; ``fileno()`` is the original stream's
    descriptor, so bytes written there bypass the capture unless CELERY_TASKLOG_CAPTURE_FD is on.
    """

    def __init__(self, original, stream: str):
        self.original = original
        self.stream = stream
        self.buffer = _BinaryProxy(self)

    def write(self, text) -> int:
        capture = active_capture()
        if capture is None:
            return self.original.write(text)
        if not health.healthy:
            self.write_original(text)
        try:
            if isinstance(text, str):
                return capture.write(self.stream, text)
            return capture.writer(self.stream).write(text)
        except Exception:
            self.write_original(text)
            return len(text)

    def write_original(self, text: str) -> None:
        with bypass():
            self.original.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if active_capture() is None:
            self.original.flush()

    def isatty(self) -> bool:
        if active_capture() is not None:
            return False
        return self.original.isatty()

    def fileno(self) -> int:
        try:
            descriptor = self.original.fileno()
        except (AttributeError, io.UnsupportedOperation, OSError):
            descriptor = None
        if descriptor is None:
            raise io.UnsupportedOperation(f"sys.{self.stream} has no file descriptor here")
        return descriptor

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self.original, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self.original, "errors", None) or "strict"

    def __getattr__(self, name):
        return getattr(self.original, name)


class _BinaryProxy:
    """``sys.stdout.buffer``: bytes written inside a task are decoded as UTF-8, not lost."""

    def __init__(self, text_proxy: TaskStreamProxy):
        self._text_proxy = text_proxy

    def write(self, data) -> int:
        capture = active_capture()
        if capture is None:
            return self._text_proxy.original.buffer.write(data)
        return capture.writer(self._text_proxy.stream).write_bytes(data)

    def flush(self) -> None:
        if active_capture() is None:
            self._text_proxy.original.buffer.flush()

    def __getattr__(self, name):
        return getattr(self._text_proxy.original.buffer, name)


def install_stream_proxies() -> None:
    """Put the proxies in place once; again if someone (Celery's redirect) replaced them."""
    with _install_lock:
        if sys.stdout is not None and not isinstance(sys.stdout, TaskStreamProxy):
            sys.stdout = TaskStreamProxy(sys.stdout, Stream.STDOUT)
        if sys.stderr is not None and not isinstance(sys.stderr, TaskStreamProxy):
            sys.stderr = TaskStreamProxy(sys.stderr, Stream.STDERR)


def write_to_worker_output(stream: str, text: str) -> None:
    """The worker's own stdout/stderr, past the proxy: where lines go that the database misses."""
    target = sys.stdout if stream == Stream.STDOUT else sys.stderr
    target = getattr(target, "original", target)
    if target is not None:
        target.write(text)


class TaskLogHandler(logging.Handler):
    """Stores records emitted inside a task as stream ``log`` lines with their level, logger
    name and ``extra={}`` fields (each in a column of its own, not in the text).

    Installed on the root logger and on ``celery.task`` (which does not propagate); a record
    seen by both is stored once. The worker's own bookkeeping about the task ("Task ...
    succeeded", logged before Celery's ``task_postrun``) is not the task's output.
    """

    IGNORED_LOGGERS = ("celery.app.trace", "celery.worker")

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        capture = active_capture()
        if (
            capture is None
            or getattr(record, "_tasklog_capture", None) is capture
            or record.name.startswith(self.IGNORED_LOGGERS)
        ):
            return
        record._tasklog_capture = capture
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        level = storable_level(record.levelno)
        if level != record.levelno:  # the column cannot hold it: the name stays in the text
            text = f"[{record.levelname}] {text}"
        name, extra = logger_name(record), extra_fields(record)
        for line in text.split("\n"):
            capture.add_line(
                Stream.LOG, cut_line(line.rstrip("\r"), capture.max_line_length), level, name, extra
            )
            extra = None  # on the record's first line only


_handler = TaskLogHandler()
HANDLER_LOGGERS = ("", "celery.task")


def install_logging_handler() -> None:
    for name in HANDLER_LOGGERS:
        logger = logging.getLogger(name)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)


class DescriptorCapture:
    """Descriptors 1 and 2 go through pipes into the run, so subprocess and C-level output is
    stored too. Process-wide, hence only for pools that run one task per process."""

    def __init__(self, capture):
        self._capture = capture
        self._saved: list[tuple[int, int, threading.Thread]] = []

    def start(self) -> DescriptorCapture:
        for descriptor, stream in ((1, Stream.STDOUT), (2, Stream.STDERR)):
            _flush_python_stream(stream)
            saved = os.dup(descriptor)
            read_end, write_end = os.pipe()
            os.dup2(write_end, descriptor)
            os.close(write_end)
            pump = threading.Thread(
                target=self._pump,
                args=(read_end, self._capture.writer(stream, "descriptor")),
                name=f"tasklog-fd{descriptor}",
                daemon=True,
            )
            pump.start()
            self._saved.append((descriptor, saved, pump))
        return self

    @staticmethod
    def _pump(read_end: int, writer) -> None:
        try:
            while chunk := os.read(read_end, 65536):
                writer.write_bytes(chunk)
        finally:
            os.close(read_end)

    def stop(self) -> None:
        for descriptor, saved, pump in self._saved:
            _flush_python_stream(Stream.STDOUT if descriptor == 1 else Stream.STDERR)
            os.dup2(saved, descriptor)
            os.close(saved)
            pump.join(timeout=2.0)
        self._saved.clear()


def _flush_python_stream(stream: str) -> None:
    with bypass():
        target = sys.__stdout__ if stream == Stream.STDOUT else sys.__stderr__
        if target is not None:
            target.flush()
