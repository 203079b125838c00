"""Argument types and options shared by the tasklog management commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta

from tasklog import conf
from tasklog.conf import SettingError, settings
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
