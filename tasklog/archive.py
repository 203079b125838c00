"""Archive: finished logs leave the database for object storage and are still read from there.

With ``CELERY_TASKLOG_ARCHIVE = {"storage": alias, "after_days": N}`` each log finished more than
N days ago becomes one gzip NDJSON object in the storage ``STORAGES[alias]``: a header line (the
``TaskLog`` row), then one line per row in seq order. It is written through Django's storage
API, read back and verified (count and SHA-256 of the lines), recorded in ``archive_name``, and
only then are the rows deleted; ``archived`` is set once they are gone.

Every step may be repeated: the object's name comes from the task id alone, an object is
recorded only once verified, and a recorded log is never written again. A run killed anywhere,
or a storage that is down, loses nothing and stores nothing twice; the next run finishes.

Readers never see the difference: ``TaskLogLine.objects.for_task`` hands them an
``ArchivedLines`` for an archived log, which answers the queryset's reading methods by
streaming the object (memory bounded by a page, whatever the log's size).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.files import File
from django.core.files.storage import storages
from django.db import connections, transaction
from django.utils import timezone

from .conf import settings
from .sections import is_error, is_section_line

logger = logging.getLogger(__name__)

FORMAT = 1
"""Version of the object's layout, in its header line."""
PREFIX = "tasklog"
SPOOL_BYTES = 8 * 1024 * 1024
"""The compressed object is kept in memory up to this size, then in a temporary file."""
READ_PAGE = 10_000
HEADER_FIELDS = (
    "task_id",
    "task_name",
    "worker",
    "queued",
    "queue",
    "started",
    "finished",
    "last_seen",
    "attempts",
    "lines",
    "dropped",
    "truncated",
    "interrupted",
    "launched_by",
    "launched_by_user_id",
    "launched_from",
)
"""What the header keeps of the row: not its secrets (share secret, flush token)."""


class ArchiveError(Exception):
    """An archive that could not be written, or cannot be read back as it was written."""


def object_name(task_id: str) -> str:
    """``tasklog/ab/<sha256 of the id>.ndjson.gz``: one name per task id, whatever the id holds
    (``/``, ``..``, unicode, 255 characters), so a repeated run overwrites its own object."""
    digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}/{digest[:2]}/{digest}.ndjson.gz"


def archive_storage():
    setting = settings.ARCHIVE
    if setting is None:
        raise ArchiveError("CELERY_TASKLOG_ARCHIVE is not set: archived logs cannot be read.")
    return storages[setting.storage]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _encoded(data: dict) -> bytes:
    """One NDJSON line: non-ASCII escaped, so a message's own line breaks never split it."""
    return (json.dumps(data, separators=(",", ":")) + "\n").encode("ascii")


def header_line(log) -> bytes:
    task = {name: getattr(log, name) for name in HEADER_FIELDS}
    for name in ("queued", "started", "finished", "last_seen"):
        task[name] = _iso(task[name])
    return _encoded({"tasklog_archive": FORMAT, "task": task})


RECORD_FIELDS = ("seq", "timestamp", "stream", "level", "logger", "message", "extra")


def line_record(row: tuple) -> bytes:
    """One row, as ``RECORD_FIELDS`` values, as its line of the object."""
    record = dict(zip(RECORD_FIELDS, row, strict=True))
    record["timestamp"] = _iso(record["timestamp"])
    return _encoded(record)


def row_pages(task_id: str, using: str) -> Iterator[list[tuple]]:
    """The log's rows as ``RECORD_FIELDS`` tuples, a keyset page at a time: no model instance
    is built, and memory holds one page."""
    from .models import TaskLogLine

    rows = TaskLogLine.objects.using(using).filter(task_id=task_id).order_by("seq")
    after = 0
    while page := list(rows.filter(seq__gt=after).values_list(*RECORD_FIELDS)[:READ_PAGE]):
        yield page
        after = page[-1][0]


@dataclass
class Digest:
    """Count and SHA-256 of an object's line records, as written or as read back."""

    count: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)

    def add(self, record: bytes) -> None:
        self.count += 1
        self.sha256.update(record)

    def __eq__(self, other) -> bool:
        return self.count == other.count and self.sha256.digest() == other.sha256.digest()


def write_object(storage, log, using: str) -> str:
    """Write ``log``'s lines as its object, read it back and verify it; returns its name.

    The lines are streamed a page at a time into the gzip stream, which spills to a temporary
    file beyond ``SPOOL_BYTES``: memory stays bounded for a log of any size.
    """
    name = object_name(log.task_id)
    written = Digest()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0, compresslevel=6) as compressed:
            compressed.write(header_line(log))
            for page in row_pages(log.task_id, using):
                for row in page:
                    record = line_record(row)
                    compressed.write(record)
                    written.add(record)
        spool.seek(0)
        try:
            storage.delete(name)  # left by a run killed before it recorded the object
            saved = storage.save(name, File(spool, name=name))
        except Exception as error:  # the storage's own errors: network, bucket, permissions
            raise ArchiveError(f"cannot write {name}: {error}") from error
    if saved != name:
        raise ArchiveError(f"the storage saved {name} as {saved}: another run is writing it")
    read_back = Digest()
    for record in object_records(storage, name):
        read_back.add(record)
    if read_back != written:
        raise ArchiveError(
            f"{name} reads back {read_back.count} lines, not the {written.count} written, "
            "or not the same ones"
        )
    return name


def object_records(storage, name: str) -> Iterator[bytes]:
    """The line records of an object, header checked and skipped; ``ArchiveError`` when the
    object is missing, truncated or corrupted."""
    try:
        with storage.open(name, "rb") as stored, gzip.GzipFile(fileobj=stored) as lines:
            header = json.loads(next(lines, b"null"))
            if not isinstance(header, dict) or header.get("tasklog_archive") != FORMAT:
                raise ArchiveError(f"{name} is not a celery-tasklog archive")
            yield from lines
    except ArchiveError:
        raise
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise ArchiveError(f"the archive {name} cannot be read: {error}") from error
    except Exception as error:  # the storage's own errors: network, bucket, permissions
        raise ArchiveError(f"the archive {name} cannot be read: {error}") from error


@dataclass
class Run:
    """What one archive run did: logs and lines moved, and the error that stopped it."""

    logs: int = 0
    lines: int = 0
    error: str = ""


def due(after_days: int, using: str, now: datetime | None = None):
    """Finished logs older than ``after_days`` whose rows are still in the database."""
    from .models import TaskLog

    cutoff = (now or timezone.now()) - timedelta(days=after_days)
    return TaskLog.objects.using(using).filter(finished__lt=cutoff, archived__isnull=True)


def archive_due(
    using: str | None = None,
    *,
    batch_size: int = 10_000,
    now: datetime | None = None,
    limit: int | None = None,
) -> Run:
    """Archive every log due (``CELERY_TASKLOG_ARCHIVE``), at most ``limit`` of them.

    The first failure stops the run (a storage that is down fails for every log) and is
    returned in ``Run.error``; what it was writing keeps its rows, and the next run retries.
    """
    run = Run()
    setting = settings.ARCHIVE
    if setting is None:
        return run
    using = using or settings.DATABASE
    storage = storages[setting.storage]
    candidates = due(setting.after_days, using, now).order_by("pk").values_list("pk", flat=True)
    last_pk = 0
    while limit is None or run.logs < limit:
        pks = list(candidates.filter(pk__gt=last_pk)[:100])
        if not pks:
            break
        for pk in pks:
            try:
                moved = archive_log(pk, storage, using, batch_size=batch_size)
            except ArchiveError as error:
                logger.warning("celery-tasklog: archive run stopped: %s", error)
                run.error = str(error)
                return run
            if moved is not None:
                run.logs += 1
                run.lines += moved
            if limit is not None and run.logs >= limit:
                break
        last_pk = pks[-1]
    return run


def archive_log(pk: int, storage, using: str, *, batch_size: int = 10_000) -> int | None:
    """Archive one log: write and verify its object, record it, delete its rows, mark it
    archived. Returns the rows deleted, or None when another run holds the log or did it.

    The log's row stays locked while its object is written (``skip_locked``: a concurrent run
    passes it by), so two runs never write one object.
    """
    from .models import TaskLog, TaskLogLine

    logs = TaskLog.objects.using(using).filter(pk=pk, archived__isnull=True)
    skip_locked = connections[using].features.has_select_for_update_skip_locked
    with transaction.atomic(using=using):
        log = logs.select_for_update(skip_locked=skip_locked).first()
        if log is None:
            return None
        if not log.archive_name:
            log.archive_name = write_object(storage, log, using)
            log.save(update_fields=["archive_name"])
    rows = TaskLogLine.objects.using(using).filter(task_id=log.task_id)
    deleted = rows.delete_in_seq_ranges(batch_size)
    # A concurrent run may be finishing the same log (resuming): one of them marks it.
    marked = logs.update(archived=timezone.now())
    return deleted if marked else None


def delete_objects(names: list[str]) -> None:
    """Delete archived objects (retention reached them); a missing one is no error."""
    if not names:
        return
    storage = archive_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception as error:  # the storage's own errors: network, bucket, permissions
            raise ArchiveError(f"cannot delete the archive {name}: {error}") from error


def _casefolded(text: str) -> Callable[[object], bool]:
    wanted = text.lower()
    return lambda line: wanted in line.message.lower()


def _searched(text: str, regex: bool) -> Callable[[object], bool]:
    """The Python twin of ``TaskLogLineQuerySet._search_condition``."""
    if not regex:
        return _casefolded(text)
    pattern = re.compile(text)
    return lambda line: pattern.search(line.message) is not None


class ArchivedLines:
    """The lines of an archived log, with the reading methods of ``TaskLogLineQuerySet``.

    Filters only add a condition; each read streams the object from its start and keeps what
    passes, stopping as soon as it has what it needs, so memory holds one page at most.
    """

    def __init__(self, task_id: str, name: str, db: str, conditions=(), marker=None):
        self.task_id = task_id
        self.name = name
        self.db = db
        self.conditions: tuple[Callable[[object], bool], ...] = tuple(conditions)
        self.marker = marker
        self.archived = True

    def _with(self, condition=None, marker=None) -> ArchivedLines:
        conditions = self.conditions + ((condition,) if condition is not None else ())
        return ArchivedLines(self.task_id, self.name, self.db, conditions, marker or self.marker)

    def _lines(self, records: Iterable[bytes] | None = None) -> Iterator[object]:
        from .models import TaskLogLine

        if records is None:
            records = object_records(archive_storage(), self.name)
        for record in records:
            data = json.loads(record)
            line = TaskLogLine(
                task_id=self.task_id,
                seq=data["seq"],
                timestamp=datetime.fromisoformat(data["timestamp"]),
                stream=data["stream"],
                level=data["level"],
                logger=data["logger"],
                message=data["message"],
                extra=data["extra"],
            )
            if all(condition(line) for condition in self.conditions):
                if self.marker is not None:
                    line.match = self.marker(line)
                yield line

    # Filters, as the queryset's.
    def for_task(self, task_id: str) -> ArchivedLines:
        return self

    def after(self, seq: int) -> ArchivedLines:
        return self._with(lambda line: line.seq > seq)

    def before(self, seq: int) -> ArchivedLines:
        return self._with(lambda line: line.seq < seq)

    def in_streams(self, *streams: str) -> ArchivedLines:
        return self._with(lambda line: line.stream in streams) if streams else self

    def since(self, moment: datetime) -> ArchivedLines:
        return self._with(lambda line: line.timestamp >= moment)

    def containing(self, text: str) -> ArchivedLines:
        return self._with(lambda line: text in line.message) if text else self

    def matching(self, text: str, *, regex: bool = False) -> ArchivedLines:
        return self._with(_searched(text, regex)) if text else self

    def marking(self, text: str, *, regex: bool = False) -> ArchivedLines:
        return self._with(marker=_searched(text, regex)) if text else self

    def at_least(self, level: int | None) -> ArchivedLines:
        if level is None:
            return self
        return self._with(lambda line: line.level is not None and line.level >= level)

    def from_logger(self, name: str) -> ArchivedLines:
        if not name:
            return self
        return self._with(lambda line: line.logger == name or line.logger.startswith(f"{name}."))

    def chosen_by(self, line_filter) -> ArchivedLines:
        return (
            self.in_streams(*line_filter.streams)
            .at_least(line_filter.level)
            .from_logger(line_filter.logger)
            .matching(line_filter.text, regex=line_filter.regex)
        )

    def errors(self) -> ArchivedLines:
        return self._with(is_error)

    def sections(self) -> ArchivedLines:
        return self._with(is_section_line)

    # Reads, as the queryset's.
    def head(self, count: int) -> list:
        lines = []
        for line in self._lines() if count > 0 else ():
            lines.append(line)
            if len(lines) >= count:
                break
        return lines

    def tail(self, count: int) -> list:
        if count <= 0:
            return []
        if not self.conditions:  # the page's first read: only the last records are parsed
            last = deque(object_records(archive_storage(), self.name), maxlen=count)
            return list(self._lines(last))
        return list(deque(self._lines(), maxlen=count))

    def pages(self, after: int = 0, page_size: int = 1000) -> Iterator[list]:
        page = []
        for line in self.after(after)._lines():
            page.append(line)
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page

    def around(self, seq: int, context: int) -> list:
        return self.before(seq + 1).tail(context + 1) + self.after(seq).head(context)

    def exists(self) -> bool:
        return bool(self.head(1))

    def count(self) -> int:
        return sum(1 for _line in self._lines())

    def count_up_to(self, limit: int) -> tuple[int, bool]:
        found = len(self.head(limit + 1))
        return min(found, limit), found <= limit

    def seq_from_end(self, count: int) -> int | None:
        lines = self.tail(count) if count > 0 else []
        return lines[0].seq if len(lines) == count else None

    def section_rows(self) -> Iterator[tuple]:
        for line in self.sections()._lines():
            yield line.seq, line.stream, line.message, line.timestamp
