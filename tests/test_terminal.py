"""A task's output reaches an operator's terminal as visible text, never as escape sequences.

Through both commands that print log text (``tasklog_show`` table and plain, ``tasklog_follow``),
with colour on and off; ``--raw`` keeps the bytes.
"""

import re
import traceback
from io import StringIO

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasklog.models import Stream, TaskLog, TaskLogLine
from tasklog.terminal import safe
from tests.rows import make_log

pytestmark = [pytest.mark.django_db, pytest.mark.abuse]

HOSTILE = {
    "osc52": ("copy \x1b]52;c;ZXZpbA==\x07 done", "copy \\x1b]52;c;ZXZpbA==\\x07 done"),
    "osc0": ("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title"),
    "clear": ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
    "osc8": (
        "\x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\",
        "\\x1b]8;;javascript:alert(1)\\x1b\\click\\x1b]8;;\\x1b\\",
    ),
    "bidi": ("invoice \u202efdp.exe", "invoice \\u202efdp.exe"),
    "c1-csi": ("\x9b2J8-bit", "\\x9b2J8-bit"),
    "bell-backspace-cr": ("a\x07b\x08c\rd", "a\\x07b\\x08c\\x0dd"),
}
SGR = re.compile(r"\x1b\[[0-9;:]*m")
CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def run(command: str, *args, **options) -> str:
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err, **options)
    return out.getvalue() + err.getvalue()


def unsafe_characters(output: str, *, colour: bool) -> list[str]:
    """Control and bidi characters in ``output`` beyond the line ends (and SGR with colour)."""
    text = SGR.sub("", output) if colour else output
    return CONTROLS.findall(text.replace("\n", ""))


COMMANDS = {
    "show-table": ("tasklog_show", "t1"),
    "show-plain": ("tasklog_show", "t1", "--format", "plain"),
    "follow": ("tasklog_follow", "t1"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("colour", [False, True], ids=["no-colour", "colour"])
@pytest.mark.parametrize("sequence", HOSTILE)
def test_escape_sequences_are_shown_not_obeyed(command, colour, sequence):
    written, shown = HOSTILE[sequence]
    make_log("t1", rows=["before", written, (Stream.STDERR, written), "after"])

    output = run(*COMMANDS[command], force_color=colour, no_color=not colour)

    assert unsafe_characters(output, colour=colour) == []
    assert output.count(shown) == 2


@pytest.mark.parametrize("command", COMMANDS)
def test_colours_pass_only_when_colour_is_on_and_are_reset(command):
    make_log("t1", rows=["\x1b[31;1mred\x1b[0m plain", "\x1b[42mbleeds", "next"])

    coloured = run(*COMMANDS[command], force_color=True)
    assert "\x1b[31;1mred\x1b[0m plain\x1b[0m" in coloured
    assert "\x1b[42mbleeds\x1b[0m" in coloured  # a colour left on is switched off at line end

    plain = run(*COMMANDS[command], no_color=True)
    assert "\x1b" not in plain
    assert "\\x1b[31;1mred\\x1b[0m plain" in plain


@pytest.mark.parametrize("command", COMMANDS)
def test_raw_keeps_the_bytes(command):
    lines = [written for written, _shown in HOSTILE.values()]
    make_log("t1", rows=lines)

    output = run(*COMMANDS[command], "--raw", no_color=True)

    for written in lines:
        assert written in output


def test_table_columns_stay_aligned_whatever_the_lines_hold():
    make_log("t1", rows=[written for written, _shown in HOSTILE.values()] + ["plain"])

    table = run("tasklog_show", "t1", no_color=True).splitlines()[7:]

    message_column = table[0].index("message")
    assert len(table) == 2 + len(HOSTILE) + 1
    assert {row.index("stdout") + len("stdout        ") for row in table[2:]} == {message_column}


def test_task_name_id_and_state_are_shown_safely_in_headers_and_lists():
    task_id = "id\x1b]0;owned\x07\u202e"
    make_log(task_id, task_name="app.\x1b[2Jtask", rows=["x"])

    header = run("tasklog_show", task_id, force_color=True)
    listing = run("tasklog_show", "--list", force_color=True)
    follow = run("tasklog_follow", task_id, force_color=True)

    for output in (header, listing, follow):
        assert unsafe_characters(output, colour=True) == []
    assert "Task       app.\\x1b[2Jtask [id\\x1b]0;owned\\x07\\u202e]" in header
    assert "id\\x1b]0;owned\\x07\\u202e" in listing
    assert "Task id\\x1b]0;owned\\x07\\u202e ended: FINISHED." in follow


def test_unknown_hostile_id_is_shown_safely_in_the_error():
    from django.core.management import CommandError

    with pytest.raises(CommandError) as error:
        run("tasklog_show", "\x1b]52;c;eA==\x07")
    assert "\x1b" not in str(error.value) and "\\x1b]52;c;eA==\\x07" in str(error.value)


def test_a_real_traceback_keeps_its_indentation_and_markers_in_every_format():
    numbers = {"total": 10}
    try:
        print(numbers["total"] / (len(numbers) - 1))
    except ZeroDivisionError:
        lines = traceback.format_exc().splitlines()
    indented = [line for line in lines if line.startswith("    ")]
    markers = [line for line in indented if "^" in line and set(line.strip()) <= set("~^")]
    assert markers  # Python marks the failing expression under it
    make_log("t1", rows=[(Stream.STDERR, line) for line in lines])

    table = run("tasklog_show", "t1", no_color=True).splitlines()[7:]
    plain = run("tasklog_show", "t1", "--format", "plain", no_color=True).splitlines()
    message_column = table[0].index("message")

    assert [row[message_column:] for row in table[2:]] == lines
    assert plain == lines


CONTROL_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_characters="\x00"),  # PostgreSQL refuses NUL
        st.sampled_from("\x1b\x07\x08\r\t\x9b\x9d\u202e\u2066\u200f[];:0123456789m"),
    ),
    max_size=60,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=st.lists(CONTROL_TEXT, min_size=1, max_size=4), colour=st.booleans())
def test_no_control_character_but_sgr_ever_reaches_the_terminal(messages, colour):
    TaskLogLine.objects.filter(task_id="t1").delete()
    TaskLog.objects.filter(task_id="t1").delete()
    make_log("t1", rows=messages, task_name=messages[0])

    for command in COMMANDS.values():
        output = run(*command, force_color=colour, no_color=not colour)
        assert unsafe_characters(output, colour=colour) == []


@given(text=st.text(), colour=st.booleans())
def test_safe_text_holds_no_control_but_sgr_and_loses_no_printable_character(text, colour):
    shown = safe(text, colour=colour)

    assert unsafe_characters(shown, colour=colour) == []
    assert "\n" not in shown
    printable = re.sub(r"[^\S\t ]|[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", "", text)
    assert all(character in shown for character in printable)
