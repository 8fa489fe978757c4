"""Strings from messages and files become short, escaped, single-line log text."""
from ppd_ros.untrusted_text import QUOTED_LIMIT, escaped, one_line, quoted


def test_quoted_escapes_control_characters_and_keeps_printable_text():
    assert quoted('rgb8') == "'rgb8'"
    assert quoted('rgb8\n[INFO] [0.0] [fake]: injected') == \
        "'rgb8\\n[INFO] [0.0] [fake]: injected'"
    assert quoted('a\x1b[31mred\r\u2028') == "'a\\x1b[31mred\\r\\u2028'"
    assert quoted('größe') == "'größe'"
    assert escaped('tab\there') == 'tab\\there'


def test_quoted_and_one_line_are_bounded():
    long = quoted('x' * 10_000)
    assert len(long) == QUOTED_LIMIT and long.endswith("...'")
    assert len(quoted('\n' * 10_000)) == QUOTED_LIMIT
    assert len(quoted('y' * 78)) == QUOTED_LIMIT and '...' not in quoted('y' * 78)
    line = one_line('first line\n\nsecond\tline ' + 'z' * 1000, 120)
    assert len(line) == 120 and '\n' not in line and line.startswith('first line second line')
    assert quoted(None) == "'None'" and quoted(b'\x00') == "'b'\\x00''"
