"""Text fit for an operator's terminal: a task's output is shown, never obeyed.

A task can print any character, and a terminal obeys escape sequences: OSC 52 writes the
clipboard, OSC 0 sets the window title, ``ESC[2J`` clears the screen, OSC 8 makes links (with
``javascript:`` targets), U+202E reverses the text that follows. Every command that prints log
text, a task name or a task id passes it through here. Only SGR sequences (colours and text
attributes) may pass, and only when the command writes colours; every other control character,
C1 control, bidi control, line separator and lone surrogate is shown as a visible escape such as
``\\x1b]52;...``. ``--raw`` keeps the text as the task wrote it, for those who pipe it on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.management.color import no_style

SGR_RESET = "\x1b[0m"

_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LINE_SEPARATORS = "\u2028\u2029"
_SHOWN_AS_ESCAPES = re.compile(
    r"(?P<sgr>\x1b\[[0-9;:]*m)"
    rf"|[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_LINE_SEPARATORS}\ud800-\udfff]"
)
"""An SGR sequence, or one character that is never written as it is (tab is kept)."""


def visible_escape(character: str) -> str:
    """``\\x1b`` for ESC, ``\\u202e`` for RIGHT-TO-LEFT OVERRIDE: printable, and unambiguous."""
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str, *, colour: bool = False) -> str:
    """``text`` with every control shown as a visible escape; SGR passes when ``colour`` is on.

    Colours a task turned on are turned off again at the end of the text, so that they never
    bleed into the next line or the shell prompt.
    """
    coloured = False

    def replace(match: re.Match) -> str:
        nonlocal coloured
        if match["sgr"] and colour:
            coloured = True
            return match["sgr"]
        return visible_escape(match[0][0]) + match[0][1:]

    shown = _SHOWN_AS_ESCAPES.sub(replace, text)
    return shown + SGR_RESET if coloured else shown


def text_filter(*, raw: bool, style) -> Callable[[str], str]:
    """What a command applies to log text: nothing with ``--raw``, else ``safe``.

    ``style`` is the command's ``self.style``: Django gives it colours only on a terminal, and
    never with ``--no-color``.
    """
    if raw:
        return str
    colour = style is not no_style()
    return lambda text: safe(text, colour=colour)
