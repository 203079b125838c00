"""Turning what a task writes into stored lines: splitting, redraws, limits, odd bytes."""

from __future__ import annotations

import codecs
import io
import re

_LINE_BREAKS = re.compile(r"(\r\n|\r|\n)")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# TaskLogLine.level is a PositiveSmallIntegerField: what every supported database can hold.
LEVEL_RANGE = (0, 32767)


def clean_text(text: str) -> str:
    """Make text storable in any database: NUL and lone surrogates become U+FFFD.

    PostgreSQL rejects NUL in text columns, and lone surrogates (from ``surrogateescape``
    decoding) cannot be encoded as UTF-8. Everything else, ANSI escapes included, is kept.
    """
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATES.sub(REPLACEMENT, text)
    return text


def storable_level(level) -> int | None:
    """A logging level the ``level`` column can hold: an out-of-range level (custom levels
    such as 40000 or -5) is clamped to the column's range; what is not a number becomes None."""
    if isinstance(level, float) and level == level and abs(level) != float("inf"):
        level = int(level)
    if not isinstance(level, int):
        return None
    low, high = LEVEL_RANGE
    return min(max(int(level), low), high)


def cut_suffix(count: int) -> str:
    return f" [… {count:,} characters cut]"


def cut_line(line: str, max_length: int) -> str:
    """A line of at most ``max_length`` characters plus a note of how many were cut."""
    if len(line) <= max_length:
        return line
    return line[:max_length] + cut_suffix(len(line) - max_length)


class DBLogWriter(io.TextIOBase):
    """A text stream for one stream of one task; the task's thread only hands what is written
    (text and time) to the capture, which splits it into lines later, in bulk (``split``).

    Guarantees: a line ends at ``\\n`` or ``\\r\\n``; a lone ``\\r`` redraws the line, so only
    its last state is kept (a progress bar gives one line, not thousands); a line longer than
    ``max_line_length`` keeps its start and says how many characters were cut, and memory stays
    bounded however long the line grows; bytes are decoded as UTF-8 with U+FFFD for invalid
    sequences; an unfinished last line is stored when the writer is closed.
    """

    def __init__(self, capture, stream: str, max_line_length: int):
        super().__init__()
        self._capture = capture
        self.stream = stream
        self._max_line_length = max_line_length
        self._parts: list[str] = []
        self._length = 0
        self._cut = 0
        self._carriage_return = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines: list[tuple[float, str]] = []  # what ``split`` found, with each line's time
        self._time = 0.0

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text) -> int:
        if not isinstance(text, str):
            return self.write_bytes(text)
        self._capture.arrive(self, text)
        if len(text) > self._max_line_length:
            self._capture.split_now()
        return len(text)

    def write_bytes(self, data) -> int:
        self.write(self._decoder.decode(bytes(data)))
        return len(data)

    def flush(self) -> None:
        """Storing is the capture's job: a ``print(..., flush=True)`` must stay cheap."""

    def close(self) -> None:
        """End the stream: its unfinished last line is stored after what was written."""
        if self.closed:
            return
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self.write(tail)
        self._capture.arrive(self, None)
        super().close()
        self._capture.forget_writer(self)

    def split(self, texts: list, times: list) -> tuple[list[float], list[str]]:
        """The lines completed by ``texts`` (None for the end of the stream), written at
        ``times``: each line's time is that of the write that ended it.

        The common case (no carriage return, no end) is one join and one split of the whole
        run of writes; anything else goes write by write."""
        joined = "".join(texts) if None not in texts else "\r"
        if "\r" in joined:
            return self._split_one_by_one(texts, times)
        pieces = clean_text(joined).split("\n")
        if len(pieces) == 1:
            self._append(pieces[0])
            return [], []
        ends = [moment for text, moment in zip(texts, times, strict=True) if "\n" in text]
        if len(ends) != len(pieces) - 1:  # some write ended more than one line
            ends = [
                moment
                for text, moment in zip(texts, times, strict=True)
                for _ in range(text.count("\n"))
            ]
        self._append(pieces[0])
        lines = [self._take_line()]
        limit = self._max_line_length
        lines += [line if len(line) <= limit else cut_line(line, limit) for line in pieces[1:-1]]
        self._append(pieces[-1])
        return ends, lines

    def _split_one_by_one(self, texts: list, times: list) -> tuple[list[float], list[str]]:
        found = self._lines = []
        for text, moment in zip(texts, times, strict=True):
            self._time = moment
            if text is None:
                if self._parts or self._cut:
                    self._end_line()
            elif "\r" not in text:
                self._write_without_carriage_returns(clean_text(text))
            else:
                self._write_with_carriage_returns(clean_text(text))
        self._lines = []
        return [moment for moment, _line in found], [line for _moment, line in found]

    def _write_without_carriage_returns(self, text: str) -> None:
        if "\n" not in text:
            self._append(text)
            return
        lines = text.split("\n")
        for line in lines[:-1]:
            self._append(line)
            self._end_line()
        self._append(lines[-1])

    def _write_with_carriage_returns(self, text: str) -> None:
        for index, token in enumerate(_LINE_BREAKS.split(text)):
            if index % 2 == 0:
                self._append(token)
            elif token == "\r":
                self._carriage_return = True
            else:
                self._carriage_return = False
                self._end_line()

    def _append(self, text: str) -> None:
        if not text:
            return
        if self._carriage_return:
            self._carriage_return = False
            self._parts.clear()
            self._length = self._cut = 0
        room = self._max_line_length - self._length
        if len(text) > room:
            self._cut += len(text) - max(room, 0)
            text = text[: max(room, 0)]
        if text:
            self._parts.append(text)
            self._length += len(text)

    def _take_line(self) -> str:
        """The line written so far (cut if it was too long), which starts a new one."""
        line = "".join(self._parts)
        if self._cut:
            line += cut_suffix(self._cut)
        self._parts.clear()
        self._length = self._cut = 0
        self._carriage_return = False
        return line

    def _end_line(self) -> None:
        self._lines.append((self._time, self._take_line()))
