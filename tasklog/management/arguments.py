"""Argument types and options shared by the tasklog management commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta

from tasklog.conf import SettingError, non_negative_int, positive_float, positive_int, settings
from tasklog.reading import parse_age


def _argument_type(parse: Callable, name: str) -> Callable[[str], object]:
    def convert(text: str):
        try:
            return parse(text)
        except SettingError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


count = _argument_type(non_negative_int, "count")
batch_size = _argument_type(positive_int, "batch_size")
seconds = _argument_type(positive_float, "seconds")


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
