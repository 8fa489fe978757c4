"""How every ppd_ros command-line tool ends: with its result, or with one line that says what to do.

    @tool_main('ppd-eval', expected=lambda: (MissingTopicError, CheckpointError))
    def main(argv=None) -> int: ...

``main`` then never shows a traceback. A ToolError, one of the tool's ``expected`` exception
types, a file problem (OSError) or Ctrl-C prints ``<prog>: error: <message>`` (or
``<prog>: interrupted``) on stderr as one line and returns a non-zero exit status. Anything
else is a bug: one line names it and PPD_ROS_DEBUG=1, with which it is re-raised with its
traceback. ToolArgumentParser gives argument errors the same form (one line, pointing at
--help) instead of argparse's usage block.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ppd_ros.untrusted_text import one_line

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = 'PPD_ROS_DEBUG'
MAX_MESSAGE_CHARS = 2000

ExpectedErrors = Callable[[], tuple[type[BaseException], ...]]


class ToolError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""

    def __init__(self, message: str, exit_status: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_status = exit_status


def print_error(prog: str, message: object) -> None:
    """``<prog>: error: <message>``: line breaks folded, control characters escaped."""
    print(f'{prog}: error: {one_line(message, MAX_MESSAGE_CHARS)}', file=sys.stderr, flush=True)


class ToolArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``<prog>: error: <problem> (see <prog> --help)``."""

    def error(self, message: str):
        print_error(self.prog, f'{message} (see {self.prog} --help)')
        sys.exit(EXIT_BAD_INPUT)


def _file_problem(error: OSError) -> str:
    """str(OSError) names the file already when it has one; otherwise say which error."""
    text = str(error)
    return text if error.filename or error.strerror else f'{type(error).__name__}: {text}'


def run_tool(prog: str, body: Callable[[], int | None], expected: ExpectedErrors | None = None
             ) -> int:
    """body()'s exit status (None counts as 0), or a non-zero one after one line on stderr."""
    try:
        return body() or 0
    except ToolError as error:
        print_error(prog, error)
        return error.exit_status
    except KeyboardInterrupt:
        print(f'\n{prog}: interrupted', file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - sorted below: expected, file problem, or bug
        if expected is not None and isinstance(error, expected()):
            print_error(prog, error)
            return EXIT_BAD_INPUT
        if os.environ.get(DEBUG_ENV):
            raise
        if isinstance(error, OSError):
            print_error(prog, _file_problem(error))
            return EXIT_FAILED
        print_error(prog, f'unexpected {type(error).__name__}: {error}. This is a bug in '
                          f'ppd_ros; run again with {DEBUG_ENV}=1 to see where, and report it')
        return EXIT_FAILED


def tool_main(prog: str, expected: ExpectedErrors | None = None):
    """Decorator: ``main(argv)`` runs through run_tool (``expected`` is called lazily, so
    importing the tool stays cheap)."""
    def wrap(main: Callable[[Sequence[str] | None], int | None]):
        @functools.wraps(main)
        def wrapped(argv: Sequence[str] | None = None) -> int:
            return run_tool(prog, lambda: main(argv), expected)
        return wrapped
    return wrap


def refuse_overwriting_inputs(inputs: Iterable[str | os.PathLike],
                              outputs: Iterable[str | os.PathLike], fix: str) -> None:
    """ToolError when writing or replacing any of ``outputs`` (files, or folders replaced
    as a whole) would overwrite or delete one of ``inputs``; ``fix`` says what to change."""
    resolved_inputs = [Path(p).resolve() for p in inputs]
    for output in outputs:
        target = Path(output).resolve()
        for source in resolved_inputs:
            if source == target or target in source.parents:
                raise ToolError(f'refusing to write {output}: it would overwrite the input '
                                f'{source}; {fix}')
