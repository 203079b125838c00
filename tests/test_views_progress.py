"""``progress_of``: the progress bar of the task page, read from the TaskResult meta."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tasklog.results import progress_of


def result(status: str, meta, content_type: str = "application/json"):
    return SimpleNamespace(status=status, result=json.dumps(meta), content_type=content_type)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"current": 3, "total": 8}, 37.5),
        ({"current": 9, "total": 8}, 100.0),
        ({"current": 1, "total": 3}, 33.3),
        ({"progress": 42}, 42.0),
        ({"progress": -5}, 0.0),
        ({"current": 3, "total": 0}, None),
        ({"current": "3", "total": 8}, None),
        ({"current": True, "total": 8}, None),
        ({"other": 1}, None),
        ([1, 2], None),
        (None, None),
    ],
)
def test_progress_from_meta(meta, expected):
    assert progress_of(result("PROGRESS", meta)) == expected


def test_success_is_complete():
    assert progress_of(result("SUCCESS", 8)) == 100.0


def test_failure_and_missing_results_have_no_progress():
    assert progress_of(result("FAILURE", {"exc_type": "ValueError"})) is None
    assert progress_of(None) is None


def test_non_json_results_are_ignored():
    assert (
        progress_of(result("PROGRESS", {"progress": 5}, "application/x-python-serialize")) is None
    )
    broken = SimpleNamespace(status="PROGRESS", result="{not json", content_type="application/json")
    assert progress_of(broken) is None
