"""What a task can write, as Hypothesis strategies, and an independent model of what the
capture must store for it: the oracle of the fuzzing tests (in-process and in a real worker).

An item is ``[kind, payload_hex, level]``: ``out``/``err`` print a text on stdout/stderr, ``bytes``
writes raw bytes and a newline to ``sys.stdout.buffer``, ``log`` logs a text at ``level``.
Payloads travel as hex (UTF-8 with surrogates passed through), because a task's JSON arguments
carry neither bytes nor lone surrogates.
"""

from __future__ import annotations

import logging
import sys

from hypothesis import strategies as st

FUZZ_LOGGER = "tests.fuzz"
LEVEL_MAX = 32767
ODD_PIECES = ["\x00", "\r", "\r\r", "\x1b[31m", "\x1b]52;c;aGk=\x07", "\ud800", "\udcff", "é"]
ODD_PIECES += ["\U0001f600", "\u202e", "\t", " ", "\x7f", "\ufffd"]
ODD_BYTES = [b"\x00", b"\r", b"\xff", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\x1b["]


def _text(max_size: int = 40):
    piece = st.one_of(
        st.characters(exclude_characters="\n", exclude_categories=()), st.sampled_from(ODD_PIECES)
    )
    short = st.lists(piece, max_size=max_size).map("".join)
    huge = st.builds(lambda text, times: text * times, short.filter(bool), st.integers(50, 3000))
    return st.one_of(short, short, short, huge)


def _bytes():
    piece = st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(ODD_BYTES))
    return st.lists(piece, max_size=20).map(b"".join).map(lambda data: data.replace(b"\n", b""))


def _hex(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").hex()


items = st.one_of(
    st.tuples(st.sampled_from(["out", "err"]), _text().map(_hex), st.just(0)),
    st.tuples(st.just("bytes"), _bytes().map(bytes.hex), st.just(0)),
    st.tuples(st.just("log"), _text().map(_hex), st.integers(1, 2**70)),
).map(list)


def payload(item) -> bytes:
    return bytes.fromhex(item[1])


def text_of(item) -> str:
    return payload(item).decode("utf-8", "surrogatepass")


def write_items(item_list) -> None:
    """Write the items as a task would (the fuzz tasks call this)."""
    logger = logging.getLogger(FUZZ_LOGGER)
    logger.setLevel(1)
    for item in item_list:
        kind, level = item[0], item[2]
        if kind == "out":
            print(text_of(item))
        elif kind == "err":
            print(text_of(item), file=sys.stderr)
        elif kind == "bytes":
            sys.stdout.buffer.write(payload(item) + b"\n")
        else:
            logger.log(level, "%s", text_of(item))


def _clean(text: str) -> str:
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in text)


def _redrawn(text: str) -> str:
    """A lone ``\\r`` starts the line over: its last non-empty state stays."""
    return next((part for part in reversed(text.split("\r")) if part), "")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f" [… {len(text) - limit:,} characters cut]"


def expected_rows(item_list, max_line_length: int) -> list[tuple[str, str, int | None]]:
    """``(stream, message, level)`` the capture must store for the items, in order."""
    rows = []
    for item in item_list:
        kind, level = item[0], item[2]
        if kind in ("out", "err"):
            stream, message = ("stdout" if kind == "out" else "stderr"), _redrawn(text_of(item))
            rows.append((stream, _clean(_cut(message, max_line_length)), None))
        elif kind == "bytes":
            message = _redrawn(payload(item).decode("utf-8", "replace"))
            rows.append(("stdout", _clean(_cut(message, max_line_length)), None))
        else:
            message = text_of(item)
            if level > LEVEL_MAX:
                message = f"[Level {level}] {message}"
            message = _cut(message.rstrip("\r"), max_line_length)
            rows.append(("log", _clean(message), min(level, LEVEL_MAX)))
    return rows
