"""The command line: the ``deploy`` program, its flags and help, and the Invoke tasks
that ``inv`` and ``fab`` find; the one place where an error becomes an exit code."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``deploy`` entry point."""
    run(sys.argv)


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
