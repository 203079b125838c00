"""Argument types and options shared by the tasklog management commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tasklog.conf import SettingError, non_negative_int, positive_float, positive_int, settings


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


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        default=settings.DATABASE,
        help="Database alias of the log tables (default: CELERY_TASKLOG_DATABASE, %(default)s).",
    )
