"""The command line: the ``deploy`` program, its flags and help, and the Invoke tasks
that ``inv`` and ``fab`` find; the one place where an error becomes an exit code."""

from __future__ import annotations

import sys


def main() -> None:
    """The ``deploy`` entry point. ``deploy --version`` is answered before Invoke is
    loaded (it needs nothing else); every other command line goes to the program."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from ..version import __version__

        print(f"deploy {__version__}")  # what Invoke's Program.print_version says
        return
    from .program import main as run

    run()
