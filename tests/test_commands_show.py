import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasklog.models import Stream, TaskLogLine
from tasklog.reading import chosen_pages, parse_since
from tests.rows import STARTED, WARNING, make_log, many_lines

pytestmark = pytest.mark.django_db

LINES = ["hello", (Stream.STDERR, "oops"), (Stream.LOG, "careful", WARNING), "bye"]

HEADER = """\
Task       tests.tasks.print_numbered [t1]
State      FINISHED
Started    2024-05-01 12:00:00 UTC
Duration   2.000 s
Lines      4 (0 dropped)
Truncated  no

"""


def show(*args) -> str:
    out = StringIO()
    call_command("tasklog_show", *args, stdout=out)
    return out.getvalue()


def test_table_has_a_header_and_one_row_a_line():
    make_log("t1", rows=LINES)
    assert show("t1") == HEADER + (
        "  seq  time          stream        message\n"
        "-----  ------------  ------------  ---------\n"
        "    1  12:00:00.500  stdout        hello\n"
        "    2  12:00:01.000  stderr        oops\n"
        "    3  12:00:01.500  log WARNING   careful\n"
        "    4  12:00:02.000  stdout        bye\n"
    )


def test_header_state_comes_from_the_task_result():
    make_log("t1", rows=LINES, truncated=True, dropped=7)
    TaskResult.objects.create(task_id="t1", status="FAILURE")
    assert "State      FAILURE\n" in show("t1")
    assert "Lines      4 (7 dropped)\nTruncated  yes\n" in show("t1")


def test_plain_is_the_text_with_levels_of_log_lines():
    make_log("t1", rows=LINES)
    assert show("t1", "--format", "plain") == "hello\noops\nWARNING: careful\nbye\n"


def test_json_is_the_spec_document():
    make_log("t1", rows=LINES[:2])
    document = json.loads(show("t1", "--format", "json", "--tail", "1"))
    assert document["task"]["task_id"] == "t1"
    assert document["task"]["state"] == "FINISHED"
    assert document["task"]["started"] == "2024-05-01T12:00:00+00:00"
    [line] = document["lines"]
    assert (
        line
        | {
            "seq": 2,
            "timestamp": "2024-05-01T12:00:01+00:00",
            "stream": "stderr",
            "level": None,
            "message": "oops",
            "logger": "",
            "extra": None,
        }
        == line
    )


def test_json_of_no_lines_is_valid():
    make_log("t1")
    assert json.loads(show("t1", "--format", "json"))["lines"] == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tail", "2"], "WARNING: careful\nbye\n"),
        (["--tail", "9"], "hello\noops\nWARNING: careful\nbye\n"),
        (["--tail", "0"], ""),
        (["--head", "1"], "hello\n"),
        (["--stream", "stderr", "--stream", "log"], "oops\nWARNING: careful\n"),
        (["--stream", "stdout", "--tail", "1"], "bye\n"),
        (["--grep", "o"], "hello\noops\n"),
        (["--since", "2024-05-01T12:00:01.5Z"], "WARNING: careful\nbye\n"),
        (["--since", "2024-05-01 12:00:01.5"], "WARNING: careful\nbye\n"),
    ],
)
def test_filters(args, expected):
    make_log("t1", rows=LINES)
    assert show("t1", "--format", "plain", *args) == expected


def test_no_matching_line_is_said():
    make_log("t1", rows=LINES)
    assert show("t1", "--grep", "absent") == HEADER + "No lines.\n"


def test_since_takes_an_age():
    assert parse_since("10m", now=STARTED).isoformat() == "2024-05-01T11:50:00+00:00"
    assert parse_since("2h", now=STARTED).isoformat() == "2024-05-01T10:00:00+00:00"
    assert parse_since("1d", now=STARTED).isoformat() == "2024-04-30T12:00:00+00:00"


def test_a_long_table_is_paged_under_one_header_with_its_columns_in_line():
    make_log("t1", lines=2500)
    many_lines("t1", 2500)
    table = show("t1").splitlines()[7:]
    assert table[:3] == [
        "  seq  time          stream        message",
        "-----  ------------  ------------  ---------",
        "    1  12:00:00.500  stdout        line 1",
    ]
    assert len(table) == 2 + 2500
    assert table[-1] == " 2500  12:20:50.000  stdout        line 2500"
    assert {row.index("line ") for row in table[2:]} == {table[0].index("message")}


def test_lines_are_read_a_bounded_page_at_a_time():
    make_log("t1")
    many_lines("t1", 250)
    lines = TaskLogLine.objects.for_task("t1")
    assert [len(page) for page in chosen_pages(lines, page_size=100)] == [100, 100, 50]
    assert [len(page) for page in chosen_pages(lines, head=150, page_size=100)] == [100, 50]
    pages = list(chosen_pages(lines, tail=120, page_size=100))
    assert [(page[0].seq, page[-1].seq) for page in pages] == [(131, 230), (231, 250)]


def test_unknown_task_is_a_clear_error():
    with pytest.raises(CommandError, match=r"^No task log with id 'nope'\.$"):
        show("nope")


def test_result_without_log_is_said():
    TaskResult.objects.create(task_id="r1", status="SUCCESS")
    with pytest.raises(CommandError) as error:
        show("r1")
    assert str(error.value) == (
        "Task r1 is known to the result backend (SUCCESS) but has no stored log: it does not "
        "use TerminalLoggingTask, capture was disabled, or its log was pruned."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is neither an ISO 8601 time"),
        (["--since", "2024-13-01"], "--since: '2024-13-01' is neither an ISO 8601 time"),
        (["--tail", "-1"], "argument --tail: must be at least 0, got '-1'"),
        (["--head", "x"], "argument --head: must be a number, got 'x'"),
        (["--tail", "1", "--head", "1"], "argument --head: not allowed with argument --tail"),
        (["--stream", "stdin"], "argument --stream: invalid choice: 'stdin'"),
    ],
)
def test_bad_arguments_are_errors(args, message):
    make_log("t1", rows=LINES)
    with pytest.raises(CommandError, match=message):
        show("t1", *args)


def test_without_a_task_id_lists_recent_tasks_with_their_state():
    make_log("t1", rows=LINES)
    make_log("t2", rows=LINES[:1], started=STARTED.replace(hour=13), task_name="app.report")
    make_log("t3", started=STARTED.replace(hour=14), finished=None, last_seen=timezone.now())
    TaskResult.objects.create(task_id="t2", status="SUCCESS")
    assert show() == (
        "task id    task                        state     started                  "
        "duration      lines    dropped\n"
        "---------  --------------------------  --------  -----------------------  "
        "----------  -------  ---------\n"
        "t3         tests.tasks.print_numbered  STARTED   2024-05-01 14:00:00 UTC  "
        "-                 0          0\n"
        "t2         app.report                  SUCCESS   2024-05-01 13:00:00 UTC  "
        "0.500 s           1          0\n"
        "t1         tests.tasks.print_numbered  FINISHED  2024-05-01 12:00:00 UTC  "
        "2.000 s           4          0\n"
    )
    assert show("--list", "--limit", "1").count("\n") == 3


def test_list_reads_states_in_one_query(django_assert_num_queries):
    for number in range(5):
        make_log(f"t{number}")
    with django_assert_num_queries(2):
        show("--list")


def test_empty_list():
    assert show() == "No task logs.\n"


@override_settings(TIME_ZONE="Europe/Paris")
def test_times_are_local():
    make_log("t1", rows=LINES[:1])
    assert "Started    2024-05-01 14:00:00 CEST\n" in show("t1")
    assert "    1  14:00:00.500  stdout        hello\n" in show("t1")


READER_ROWS = [
    "alpha",  # 1
    "beta",  # 2
    (Stream.LOG, "Gamma found", WARNING, "app.db", {"rows": 3, "table": "users"}),  # 3
    "delta",  # 4
    "epsilon",  # 5
    "zeta",  # 6
    "eta",  # 7
    (Stream.LOG, "theta found", 40, "other"),  # 8
    "iota",  # 9
]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--grep", "FOUND"],
            "WARNING: app.db: Gamma found rows=3 table=users\nERROR: other: theta found\n",
        ),
        (["--grep", "^[a-e]", "--regex"], "alpha\nbeta\ndelta\nepsilon\neta\n"),
        (
            ["--grep", "found", "-C", "1"],
            (
                "beta\nWARNING: app.db: Gamma found rows=3 table=users\ndelta\n"
                "--\neta\nERROR: other: theta found\niota\n"
            ),
        ),
        (
            ["--grep", "a$", "--regex", "-C", "1"],
            (
                "alpha\nbeta\nWARNING: app.db: Gamma found rows=3 table=users\ndelta\nepsilon\n"
                "zeta\neta\nERROR: other: theta found\niota\n"
            ),
        ),
        (
            ["--grep", "found", "-C", "2", "--stream", "log"],
            ("WARNING: app.db: Gamma found rows=3 table=users\nERROR: other: theta found\n"),
        ),
        (["--level", "error"], "ERROR: other: theta found\n"),
        (["--level", "30", "--logger", "app"], "WARNING: app.db: Gamma found rows=3 table=users\n"),
        (["--logger", "app.d"], ""),
        (["--grep", "found", "--tail", "1", "-C", "1"], "eta\nERROR: other: theta found\niota\n"),
    ],
)
def test_search_and_filters(args, expected):
    make_log("t1", rows=READER_ROWS)
    assert show("t1", "--format", "plain", *args) == expected


def test_context_in_the_table_marks_the_gaps():
    make_log("t1", rows=READER_ROWS)
    rows = show("t1", "--grep", "found", "-C", "0").splitlines()[-3:]
    assert [row.strip()[:1] for row in rows] == ["3", "-", "8"]
    assert rows[1] == "--"


def test_json_writes_one_object_per_line_for_jq():
    make_log("t1", rows=READER_ROWS)
    lines = show("t1", "--json", "--grep", "found", "-C", "1").splitlines()
    objects = [json.loads(line) for line in lines]
    assert [(line["seq"], line["match"]) for line in objects] == [
        (2, False),
        (3, True),
        (4, False),
        (7, False),
        (8, True),
        (9, False),
    ]
    assert objects[1]["logger"] == "app.db"
    assert objects[1]["extra"] == {"rows": 3, "table": "users"}


def test_json_escapes_what_a_terminal_would_obey():
    make_log("t1", rows=["\x1b]52;c;aGk=\x07\u202e"])
    [line] = show("t1", "--json").splitlines()
    assert line.isascii() and "\x1b" not in line
    assert json.loads(line)["message"] == "\x1b]52;c;aGk=\x07\u202e"


@pytest.mark.abuse
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--grep", "(a+)+", "--regex"], "--grep: Search too expensive: a repeat inside a repeat"),
        (["--grep", "(", "--regex"], "--grep: Invalid regular expression: missing )"),
        (["--grep", "x" * 1001], "--grep: The search is 1,001 characters; at most 1000."),
        (["--grep", "a\x00"], "--grep: The search must not contain NUL characters."),
    ],
)
def test_bad_searches_are_clear_errors(args, error):
    make_log("t1", rows=READER_ROWS)
    with pytest.raises(CommandError) as raised:
        show("t1", *args)
    assert str(raised.value).startswith(error)


@pytest.mark.abuse
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--level", "LOUD"], "argument --level: Unknown level 'LOUD'"),
        (["--level", "-1"], "argument --level: Unknown level '-1'"),
        (["--logger", "x" * 256], "argument --logger: The logger name is longer than 255"),
        (["-C", "1001"], "argument -C/--context: at most 1000 lines, got 1001"),
        (["-C", "-1"], "argument -C/--context: "),
        (["--stream", "stdin"], "argument --stream: invalid choice: 'stdin'"),
    ],
)
def test_bad_options_are_usage_errors(args, error):
    make_log("t1", rows=READER_ROWS)
    with pytest.raises(CommandError) as raised:
        show("t1", *args)
    assert str(raised.value).startswith(f"Error: {error}")
