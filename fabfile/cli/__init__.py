"""The command line: the ``deploy`` program, its flags and help, and the Invoke tasks
that ``inv`` and ``fab`` find; the one place where an error becomes an exit code."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def main() -> NoReturn:
    """The ``deploy`` entry point; it ends the process as soon as the command is done."""
    try:
        run(sys.argv)
    except SystemExit as ended:
        end(ended.code)
    end(0)


def end(code: object) -> NoReturn:
    """Exit now with ``code`` (as `SystemExit` reads it), without the interpreter's
    teardown: freeing every module of paramiko, cryptography, invoke and rich one by
    one costs 0.15 s of CPU after the command's last word, for nothing. What it must
    have done is done: every file was closed where it was written, the connections by
    `fabfile.cli.boundary`, and every thread left is a daemon, which exit ends anyway;
    output is flushed here."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): said on stderr, exit 1
        print(code, file=sys.stderr)
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left: as `fabfile.cli.boundary.reader_gone`
        status = status or 141
    os._exit(status)


def run(argv: list[str]) -> None:
    """``deploy ARGV`` (its first word the program's name), loading only what it uses.

    ``deploy --version`` is answered before anything else is loaded (it needs nothing
    else); the status table and its flags (`fabfile.cli.bare`) without Invoke's
    program; every other command line goes to the program.
    """
    words = argv[1:]
    if words in (["--version"], ["-V"]):
        from ..version import __version__

        print(f"deploy {__version__}")  # what Invoke's Program.print_version says
        return
    from . import bare

    given = bare.parse(words)
    if given is not None:
        bare.main(given)
        return
    from .program import main as program

    program(argv)
