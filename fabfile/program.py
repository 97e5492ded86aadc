"""The ``deploy`` command: an Invoke `Program` built by a factory, as Fabric builds ``fab``.

``deploy`` alone shows the status table and ``deploy app-1.2.war`` deploys
that WAR: `route` inserts the implied task name before Invoke parses the
command line, so every flag stays a task flag (``--hosts``, ``--json``, ...).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence

from invoke import Program
from invoke.exceptions import Exit, ParseError

from . import __version__
from .errors import ExitCode
from .tasks import namespace

TASKS = ("status", "deploy", "rollback", "history")
_VALUED = ("--artifact", "-a", "--app-dir", "--app", "--hosts", "--limit")
_CORE = {"-h", "--help", "-V", "--version", "-l", "--list", "--complete", "-d", "--debug"}


def route(argv: Sequence[str]) -> list[str]:
    """Insert the implied task: ``deploy``, ``deploy X.war``, ``deploy --latest``.

    A bare ``*.war`` word becomes ``--artifact X.war``, since Invoke has no
    optional positional arguments.
    """
    head, rest = list(argv[:1]), list(argv[1:])
    if not rest:
        return [*head, "status"]
    if rest[0] in _CORE:
        return head + rest
    named = [i for i, word in enumerate(rest) if word in TASKS and _bare(rest, i)]
    task = rest.pop(named[0]) if named else None  # `deploy --app-dir X rollback` too
    wars = [i for i, word in enumerate(rest) if word.endswith(".war") and _bare(rest, i)]
    for index in reversed(wars):
        rest.insert(index, "--artifact")
    if task is None:
        deploying = {"--latest", "--artifact", "-a", "--force"}
        wants = wars or any(w in deploying or w.startswith("--artifact=") for w in rest)
        task = "deploy" if wants else "status"
    return [*head, task, *rest]


def _bare(words: list[str], index: int) -> bool:
    """A word that is not the value of the flag before it."""
    if words[index].startswith("-"):
        return False  # --artifact=x.war already says what it is
    return index == 0 or words[index - 1] not in _VALUED


class DeployProgram(Program):
    """Invoke's Program with `route` applied to the command line."""

    def run(self, argv: list[str] | str | None = None, exit: bool = True) -> None:
        words = argv.split() if isinstance(argv, str) else list(argv or sys.argv)
        super().run(route(words), exit=exit)

    def parse_core(self, argv: list[str] | None) -> None:
        with _usage():
            super().parse_core(argv)

    def parse_tasks(self) -> None:
        with _usage():
            super().parse_tasks()


@contextlib.contextmanager
def _usage() -> Iterator[None]:
    """Report command-line mistakes with the documented usage exit code.

    Invoke raises ParseError for unknown flags and ValueError for a value of
    the wrong type (``--limit abc``).
    """
    try:
        yield
    except (ParseError, ValueError) as error:
        raise Exit(f"error: {error}; see deploy --help", code=int(ExitCode.USAGE)) from None


def make_program() -> DeployProgram:
    """A fresh ``deploy`` program; tests build their own and run it in-process."""
    return DeployProgram(namespace=namespace(), version=__version__, binary="deploy", name="deploy")


def main() -> None:
    make_program().run()
