"""Every number option of every command takes the settings' bounds: no nan, inf or overflow."""

import pytest
from django.core.management import CommandError, call_command

pytestmark = [pytest.mark.django_db, pytest.mark.abuse]

NUMBER_OPTIONS = [
    ("tasklog_show", "--limit"),
    ("tasklog_show", "--tail"),
    ("tasklog_show", "--head"),
    ("tasklog_follow", "--tail"),
    ("tasklog_follow", "--timeout"),
    ("tasklog_follow", "--interval"),
    ("tasklog_prune", "--days"),
    ("tasklog_prune", "--batch-size"),
    ("tasklog_diagnose", "--timeout"),
]
POSITIONAL = {"tasklog_follow": ["some-task"]}


@pytest.mark.parametrize(("command", "option"), NUMBER_OPTIONS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", "must be a number, got 'nan'"),
        ("inf", "must be at most"),
        ("-inf", "must be (at least|greater than) [01]"),
        ("9" * 5000, r"must be at most .*\(5002 chars\)"),
        ("1e400", "must be at most"),
        ("٣x", "must be a number"),
    ],
)
def test_a_bad_number_is_a_clear_error(command, option, value, message):
    with pytest.raises(CommandError, match=f"argument {option}: {message}"):
        call_command(command, *POSITIONAL.get(command, []), f"{option}={value}")
