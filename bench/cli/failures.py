"""What ``bench`` prints when a command fails: one line, never a traceback (``--debug`` or
``BENCH_DEBUG=1`` shows it).

Exit codes: 0 done, 1 an error (one line on stderr), 2 a command-line usage error (argparse),
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import os
import sys

from bench.errors import BenchError

DEBUG_HINT = "rerun with --debug for the traceback"


def _where(exc: OSError) -> str:
    """The path at fault: a rename's target (``filename2``, the temp file being the source of
    an atomic write), else ``filename``."""
    name = exc.filename2 if exc.filename2 is not None else exc.filename
    return f" {name}" if name is not None and str(name) else ""


def describe(exc: BaseException) -> str:
    """The one line that explains ``exc`` to a user."""
    if isinstance(exc, BenchError):
        return str(exc)
    if isinstance(exc, BrokenPipeError):
        return "the output was closed before bench finished writing it (a pipe such as | head)"
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"a text file is not UTF-8 ({exc.reason} at byte {exc.start}); the harness reads "
            f"text files as UTF-8: save it as UTF-8 ({DEBUG_HINT} to see which file)"
        )
    if isinstance(exc, MemoryError):
        return f"out of memory ({DEBUG_HINT})"
    if isinstance(exc, OSError):
        where = _where(exc)
        if exc.errno == errno.ENOSPC:
            return f"no space left on the device while writing{where}; free some and rerun"
        if isinstance(exc, PermissionError):
            return f"permission denied:{where or ' (a file or folder bench had to use)'}"
        if isinstance(exc, NotADirectoryError) or exc.errno == errno.ENOTDIR:
            return f"a file stands where a folder is expected:{where}"
        if isinstance(exc, IsADirectoryError):
            return f"a folder stands where a file is expected:{where}"
        if isinstance(exc, FileExistsError):
            return f"a file already exists where a folder must be made:{where}"
        if exc.errno == errno.EROFS:
            return f"read-only file system:{where}"
        return f"{exc.strerror or type(exc).__name__}:{where} ({DEBUG_HINT})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected {type(exc).__name__}{': ' + text if text else ''} ({DEBUG_HINT})"


def report_failure(exc: BaseException, debug: bool) -> int:
    """Print ``exc`` as one line (or re-raise it with ``debug``) and return the exit code."""
    if isinstance(exc, KeyboardInterrupt):
        print("bench: interrupted", file=sys.stderr)
        return 130
    if debug:
        raise exc
    if isinstance(exc, BrokenPipeError):
        # Python flushes stdout again at exit: point it at devnull so that flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    print(f"bench: error: {describe(exc)}", file=sys.stderr)
    return 1
