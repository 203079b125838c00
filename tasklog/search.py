"""Searching one task's log: what a reader asks for, checked, and the work it may cost bounded.

A search runs in the database, so it works on a log of a million lines. Its cost is bounded
twice: a regular expression that can backtrack exponentially (nested or alternated repeats,
back-references) is refused before it runs, because on SQLite the pattern runs in Python's
``re``, whose backtracking cannot be interrupted; and every search query runs under a time
limit (``statement_timeout`` on PostgreSQL, a progress handler on SQLite, ``max_statement_time``
on MariaDB), past which it is abandoned with ``SearchTooExpensive`` instead of holding a worker
thread.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import OperationalError, connections, transaction

try:  # Python's own parser of patterns: the only way to see a pattern's structure.
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10 and older
    import sre_constants
    import sre_parse

MAX_QUERY_LENGTH = 1000
MAX_LOGGER_LENGTH = 255
MAX_VARIABLE_REPEATS = 4
MAX_CONTEXT = 1000
"""Lines of context around a hit, on each side, that a reader may ask for."""
SEARCH_SECONDS = 5.0
"""How long one search query may run before it is abandoned."""
LEVEL_RANGE = (0, 32767)
PROGRESS_STEPS = 1000
"""SQLite virtual machine steps between two looks at the clock."""

_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_POSSESSIVE = getattr(sre_constants, "POSSESSIVE_REPEAT", None)


class SearchError(ValueError):
    """A search that cannot run as asked; the message says why, fit for the reader."""


class SearchTooExpensive(SearchError):
    """A search whose pattern could run for ever, or that ran out of time."""


@dataclass(frozen=True)
class LineFilter:
    """Which lines of a log a reader wants: a search and the stream, level and logger filters."""

    text: str = ""
    regex: bool = False
    streams: tuple[str, ...] = ()
    level: int | None = None
    logger: str = ""

    @property
    def searching(self) -> bool:
        return bool(self.text)

    @property
    def active(self) -> bool:
        return bool(self.text or self.streams or self.level is not None or self.logger)


def line_filter(
    *,
    text: str = "",
    regex: bool = False,
    streams: Iterator[str] | tuple[str, ...] = (),
    level: str | int | None = None,
    logger: str = "",
) -> LineFilter:
    """A checked ``LineFilter``; ``SearchError`` names what is wrong with the request."""
    return LineFilter(
        text=search_text(text, regex=regex),
        regex=regex and bool(text),
        streams=stream_names(streams),
        level=level_number(level),
        logger=logger_prefix(logger),
    )


def search_text(text: str, *, regex: bool) -> str:
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(f"The search is {len(text):,} characters; at most {MAX_QUERY_LENGTH}.")
    if "\x00" in text:
        raise SearchError("The search must not contain NUL characters.")
    if regex and text:
        check_pattern(text)
    return text


def check_pattern(pattern: str) -> None:
    """Raise ``SearchError`` for an invalid pattern, ``SearchTooExpensive`` for one that can
    backtrack exponentially or polynomially far."""
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as error:
        raise SearchError(f"Invalid regular expression: {error}.") from None
    repeats = _check_items(parsed, inside_repeat=False)
    if repeats > MAX_VARIABLE_REPEATS:
        raise SearchTooExpensive(
            f"Search too expensive: the pattern has {repeats} repeats (?, *, +, {{m,n}}); "
            f"at most {MAX_VARIABLE_REPEATS}."
        )


def _check_items(items, *, inside_repeat: bool) -> int:
    """Walk a parsed pattern; returns how many repeats of variable length (``a?``, ``a+``,
    ``a{2,5}``) it holds: each multiplies the ways a line can be tried."""
    repeats = 0
    for op, argument in items:
        if op == sre_constants.GROUPREF or op == sre_constants.GROUPREF_EXISTS:
            raise SearchTooExpensive(
                "Search too expensive: back-references (\\1, (?P=name)) are not allowed."
            )
        if op in _REPEATS or (_POSSESSIVE is not None and op == _POSSESSIVE):
            low, high, sub = argument
            if low != high and inside_repeat:
                raise SearchTooExpensive(
                    "Search too expensive: a repeat inside a repeat, such as (a+)+ or (a?){9}, "
                    "can take for ever on a long line."
                )
            repeats += low != high
            repeats += _check_items(sub, inside_repeat=inside_repeat or high > 1)
        elif op == sre_constants.BRANCH:
            if inside_repeat:
                raise SearchTooExpensive(
                    "Search too expensive: alternatives inside a repeat, such as (a|ab)*, can "
                    "take for ever on a long line."
                )
            for branch in argument[1]:
                repeats += _check_items(branch, inside_repeat=inside_repeat)
        elif op == sre_constants.SUBPATTERN:
            repeats += _check_items(argument[-1], inside_repeat=inside_repeat)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            repeats += _check_items(argument[1], inside_repeat=inside_repeat)
        elif getattr(sre_constants, "ATOMIC_GROUP", None) == op:
            repeats += _check_items(argument, inside_repeat=inside_repeat)
    return repeats


def in_dialect(pattern: str, vendor: str) -> str:
    """``pattern`` (checked with Python's ``re``) as the database's engine reads it.

    PostgreSQL's engine shares Python's syntax but for word boundaries: its ``\\b`` is a
    backspace and ``\\y`` the boundary. Outside brackets ``\\b``/``\\B`` become
    ``\\y``/``\\Y`` there. SQLite runs Python's ``re`` itself; MariaDB's PCRE reads ``\\b``
    as Python does.
    """
    if vendor != "postgresql" or "\\" not in pattern:
        return pattern
    out, index, in_class = [], 0, False
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if not in_class and escaped in "bB":
                escaped = "y" if escaped == "b" else "Y"
            out.append("\\" + escaped)
            index += 2
            continue
        if character == "[" and not in_class:
            in_class = True
            if pattern[index + 1 : index + 2] == "^":
                out.append("[^")
                index += 2
                if pattern[index : index + 1] == "]":
                    out.append("]")
                    index += 1
                continue
            if pattern[index + 1 : index + 2] == "]":
                out.append("[]")
                index += 2
                continue
        elif character == "]" and in_class:
            in_class = False
        out.append(character)
        index += 1
    return "".join(out)


def stream_names(streams) -> tuple[str, ...]:
    """Stream names, each one of ``Stream``; several may come in one comma-separated value."""
    from .models import Stream

    names = []
    for value in streams:
        for name in str(value).split(","):
            name = name.strip()
            if name and name not in Stream.values:
                raise SearchError(
                    f"Unknown stream {name[:40]!a}; one of: {', '.join(Stream.values)}."
                )
            if name and name not in names:
                names.append(name)
    return tuple(names)


def level_number(level: str | int | None) -> int | None:
    """A logging level from its name (``warning``, ``WARN``) or its number (``30``)."""
    if level is None or level == "":
        return None
    text = str(level).strip()
    if text.isascii() and text.isdigit() and len(text) <= 5:
        number = int(text)
        if LEVEL_RANGE[0] <= number <= LEVEL_RANGE[1]:
            return number
    named = logging.getLevelNamesMapping().get(text.upper()) if text.isascii() else None
    if named is not None:
        return named
    raise SearchError(
        f"Unknown level {text[:40]!a}; a number from 0 to {LEVEL_RANGE[1]} or one of: "
        "DEBUG, INFO, WARNING, ERROR, CRITICAL."
    )


def logger_prefix(name: str) -> str:
    if len(name) > MAX_LOGGER_LENGTH:
        raise SearchError(f"The logger name is longer than {MAX_LOGGER_LENGTH} characters.")
    if "\x00" in name:
        raise SearchError("The logger name must not contain NUL characters.")
    return name.strip()


@contextlib.contextmanager
def walking_the_index(alias: str) -> Iterator[None]:
    """On PostgreSQL, plan the queries inside as ordered walks of the ``(task_id, seq)`` index.

    The planner guesses that a search matches a line in 200. Guessing few hits, it reads all of
    the task's matches and sorts them, or scans the whole table, where walking the task's lines
    in seq order stops at the page's last hit. On a 1,000,000-line task in a 5,000,000-line
    table: 70 ms instead of 480 ms for the first 500 hits of a common word, 0.5 s instead of
    0.9 s for a rare regex (docs/performance.md). Every query of a log reader is on one task's
    seq range, so the walk is always the right plan there; ``SET LOCAL`` ends with the
    transaction.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            for planner_method in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                cursor.execute(f"SET LOCAL {planner_method} = off")
        yield


@contextlib.contextmanager
def time_limit(alias: str, seconds: float | None = None) -> Iterator[None]:
    """Run the queries inside within ``seconds`` (``SEARCH_SECONDS``), else raise
    ``SearchTooExpensive``.

    PostgreSQL cancels the statement itself (``SET LOCAL`` ends with the transaction; its
    queries walk the index, see ``walking_the_index``); SQLite
    calls back between virtual machine steps and the callback stops the query; MariaDB stops
    it at its session's ``max_statement_time`` (``mariadb_statement_time``). Other databases
    run the search without a limit in time: the refusal of backtracking patterns still holds.
    """
    connection = connections[alias]
    seconds = SEARCH_SECONDS if seconds is None else seconds
    try:
        if connection.vendor == "postgresql":
            with walking_the_index(alias):
                with connection.cursor() as cursor:
                    # 0 would mean no limit at all: at least a millisecond.
                    milliseconds = max(1, round(seconds * 1000))
                    cursor.execute("SET LOCAL statement_timeout = %s", [milliseconds])
                yield
        elif connection.vendor == "sqlite":
            connection.ensure_connection()
            deadline = time.monotonic() + seconds
            connection.connection.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            try:
                yield
            finally:
                connection.connection.set_progress_handler(None, 0)
        elif connection.vendor == "mysql":
            with mariadb_statement_time(connection, seconds):
                yield
        else:
            yield
    except OperationalError as error:
        if not _ran_out_of_time(error):
            raise
        raise SearchTooExpensive(
            f"Search too expensive: it took longer than {seconds:g} s. Narrow it down "
            "(a plain text search, a stream, level or logger filter)."
        ) from None


@contextlib.contextmanager
def mariadb_statement_time(connection, seconds: float) -> Iterator[None]:
    """MariaDB's ``max_statement_time`` (seconds, 0 for none) for the statements inside, the
    session's own value put back after them: the connection outlives the request.

    ``SET STATEMENT ... FOR`` would bound one statement only, but the ORM builds the search's
    queries; the session variable bounds them all. MySQL has no such variable (its
    ``max_execution_time`` is a different one): there the search runs without a limit.
    """
    if not connection.mysql_is_mariadb:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.max_statement_time")
        (previous,) = cursor.fetchone()
        # 0 would mean no limit at all: at least a millisecond.
        cursor.execute("SET SESSION max_statement_time = %s", [max(seconds, 0.001)])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION max_statement_time = %s", [previous])


def _ran_out_of_time(error: OperationalError) -> bool:
    cause = error.__cause__
    return type(cause).__name__ == "QueryCanceled" or "interrupted" in str(error)
