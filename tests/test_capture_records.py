"""Logging records keep their logger and their ``extra={}`` fields, JSON-safe and bounded."""

from __future__ import annotations

import json
import logging

import pytest

from tasklog.capture import capture_output
from tasklog.capture.records import MAX_EXTRA_KEYS, extra_fields
from tasklog.models import TaskLogLine

pytestmark = pytest.mark.django_db

logger = logging.getLogger("tests.records")


def stored(task_id: str) -> list[tuple]:
    return list(
        TaskLogLine.objects.for_task(task_id)
        .order_by("seq")
        .values_list("stream", "logger", "message", "extra")
    )


def test_logger_and_extra_are_columns_of_their_own():
    with capture_output("records", synchronous=True):
        print("plain")
        logger.warning("copied %d rows", 3, extra={"table": "users", "ok": True, "ratio": 0.5})
        logging.getLogger("tests.records.child").warning("no extra")

    assert stored("records") == [
        ("stdout", "", "plain", None),
        ("log", "tests.records", "copied 3 rows", {"table": "users", "ok": True, "ratio": 0.5}),
        ("log", "tests.records.child", "no extra", None),
    ]


def test_a_traceback_keeps_the_logger_on_every_line_and_extra_on_the_first():
    with capture_output("traceback", synchronous=True):
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed", extra={"step": 2})

    lines = stored("traceback")
    assert {line[1] for line in lines} == {"tests.records"}
    assert [line[3] for line in lines] == [{"step": 2}] + [None] * (len(lines) - 1)


@pytest.mark.abuse
def test_hostile_extra_values_are_stored_safely_and_bounded():
    class Exploding:
        def __repr__(self):
            raise RuntimeError("no repr")

    hostile = {
        "obj": object(),
        "exploding": Exploding(),
        "huge": "x" * 100_000,
        "nul": "a\x00b",
        "surrogate": "\udcff",
        "nan": float("nan"),
        "big": 2**80,
        "bytes": b"\xff\x00",
        "nested": {"a": [1, {"b": object}]},
        "unicode ключ\n": "значение",
    }
    with capture_output("hostile", synchronous=True):
        logger.warning("hostile", extra=hostile)

    [(_stream, _logger, _message, extra)] = stored("hostile")
    assert extra["obj"].startswith("<object object at ")
    assert extra["exploding"] == "<unrepresentable Exploding: RuntimeError>"
    assert extra["huge"] == "x" * 500 + " [… 99,500 characters cut]"
    assert extra["nul"] == "a\ufffdb"
    assert extra["surrogate"] == "\ufffd"
    assert extra["nan"] == "nan"
    assert extra["big"] == str(2**80)
    assert extra["bytes"] == "b'\\xff\\x00'"
    assert extra["nested"] == "{'a': [1, {'b': <class 'object'>}]}"
    assert extra["unicode ключ\n"] == "значение"
    assert len(json.dumps(extra)) < 2_000


@pytest.mark.abuse
def test_past_the_key_limit_the_rest_are_counted():
    record = logging.makeLogRecord({"msg": "m", **{f"k{n}": n for n in range(100)}})
    fields = extra_fields(record)
    assert len(fields) == MAX_EXTRA_KEYS + 1
    assert fields["…"] == "80 more fields not stored"
    assert len(extra_fields(logging.makeLogRecord({"k" * 1000: 1}))) == 1
    assert next(iter(extra_fields(logging.makeLogRecord({"k" * 1000: 1})))) == "k" * 64


def test_a_record_without_extra_has_none():
    assert extra_fields(logging.makeLogRecord({"msg": "m", "args": ()})) is None
