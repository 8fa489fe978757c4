"""Text from outside (message fields, file contents, paths) made safe for one log line.

A message's encoding, format or frame_id, a key in a weight file or a library's error text
can hold newlines (a forged log line), terminal escapes or megabytes of characters. Every
such string goes into a log or error message through `quoted` (short values) or `one_line`
(longer free text): control and non-printable characters are escaped as in Python's repr, and
the result is cut to a fixed length.
"""
from __future__ import annotations

#: Longest quoted value, quotes and the cut mark included.
QUOTED_LIMIT = 80
#: Longest one_line text.
LINE_LIMIT = 240
CUT_MARK = '...'


def escaped(text: str) -> str:
    """`text` with newlines, tabs, escapes and other non-printable characters as backslash
    sequences (Python repr rules), printable characters kept."""
    text = str(text)
    if text.isprintable():
        return text
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(0, limit - len(CUT_MARK))] + CUT_MARK


def quoted(value, limit: int = QUOTED_LIMIT) -> str:
    """'value' escaped and cut so that the whole quoted string has at most `limit` characters."""
    text = str(value)
    return "'" + _cut(escaped(text[:limit]), limit - 2) + "'"


def one_line(text, limit: int = LINE_LIMIT) -> str:
    """Free text (e.g. an exception message) as one escaped line of at most `limit` chars;
    runs of whitespace, newlines included, become one space."""
    return _cut(escaped(' '.join(str(text).split())[:limit]), limit)
