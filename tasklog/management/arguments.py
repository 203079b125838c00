"""Argument types and options shared by the tasklog management commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta

from django.core.management.base import CommandError

from tasklog import conf, search
from tasklog.conf import SettingError, settings
from tasklog.models import Stream
from tasklog.reading import parse_age


def _argument_type(parse: Callable, name: str) -> Callable[[str], object]:
    def convert(text: str):
        try:
            return parse(text)
        except SettingError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


# The same parsers, and so the same bounds, as the settings: no nan, inf or overflowing value.
count = _argument_type(conf.non_negative_int, "count")
batch_size = _argument_type(conf.positive_int, "batch_size")
seconds = _argument_type(conf.positive_float, "seconds")
days = _argument_type(conf.days, "days")


def context_count(text: str) -> int:
    """Lines of context around a hit: as many as the JSON endpoint gives (``MAX_CONTEXT``)."""
    number = count(text)
    if number > search.MAX_CONTEXT:
        raise argparse.ArgumentTypeError(f"at most {search.MAX_CONTEXT} lines, got {number}")
    return number


def age(text: str) -> timedelta:
    """A span such as ``90s``, ``10m``, ``2h`` or ``7d``, for options such as ``--expires``."""
    span = parse_age(text)
    if span is None or not span:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a span of time such as 90s, 10m, 2h or 7d"
        )
    return span


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        default=settings.DATABASE,
        help="Database alias of the log tables (default: CELERY_TASKLOG_DATABASE, %(default)s).",
    )


def add_raw_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw",
        action="store_true",
        help="Write log text as the task wrote it, escape sequences included (for pipes).",
    )


def _level(text: str) -> int:
    try:
        return search.level_number(text)
    except search.SearchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _logger(text: str) -> str:
    try:
        return search.logger_prefix(text)
    except search.SearchError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """The search and filters of every reading command; ``line_filter`` reads them back."""
    parser.add_argument(
        "--grep", default="", metavar="TEXT", help="Only lines containing TEXT (any case)."
    )
    parser.add_argument(
        "--regex", action="store_true", help="--grep is a regular expression (case-sensitive)."
    )
    parser.add_argument(
        "--stream",
        action="append",
        choices=Stream.values,
        default=[],
        help="Only lines of this stream (repeat for several).",
    )
    parser.add_argument(
        "--level", type=_level, help="Only logging records at this level or above (name or number)."
    )
    parser.add_argument(
        "--logger", type=_logger, default="", help="Only records of this logger and its children."
    )
    parser.add_argument(
        "--json", action="store_true", help="One JSON object per line (NDJSON), for jq."
    )


def line_filter(options: dict) -> search.LineFilter:
    """The ``search.LineFilter`` of ``add_filter_arguments``' options; a bad pattern is a
    ``CommandError`` that says why."""
    try:
        return search.line_filter(
            text=options["grep"],
            regex=options["regex"],
            streams=options["stream"],
            level=options["level"],
            logger=options["logger"],
        )
    except search.SearchError as error:
        raise CommandError(f"--grep: {error}") from None
