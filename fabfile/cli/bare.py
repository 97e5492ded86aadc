"""``deploy`` alone (or with the status table's own flags): the status table without
Invoke's parser.

The status table is the command run most, often in a loop or a prompt; building
Invoke's program (its config, parser and every task) costs more than probing three
nodes. A command line made only of ``status`` and the status flags, each spelled
as `fabfile.cli.flags.FLAGS` spells it and given once, is answered here, through the
same `Options` (`fabfile.cli.scope`) and the same boundary (`fabfile.cli.boundary`)
as the ``status`` task. Anything else (another command, help, a mistake, a flag
twice) goes to the program, whose messages stay the only ones.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..errors import ExitCode
from .boundary import outcome, reader_gone
from .flags import FLAGS

STATUS = ("hosts", "lb", "json", "app-dir", "app")  # the status task's flags
_NAMES = {
    **{f"--{name}": name for name in STATUS},
    **{f"-{FLAGS[name].short}": name for name in STATUS if FLAGS[name].short},
}


def parse(words: Sequence[str]) -> dict[str, str | bool] | None:
    """The status flags ``words`` give (``deploy`` without its own name), or None when
    they ask for anything else: the program answers those."""
    given: dict[str, str | bool] = {}
    named = False  # ``deploy status`` names the default command
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word == "status" and not named:
            named = True
            continue
        spelled, equals, value = word.partition("=") if word.startswith("--") else (word, "", "")
        name = _NAMES.get(spelled)
        if name is None or name in given:
            return None
        if not FLAGS[name].value:
            if equals:
                return None  # --json=yes: the program says it takes no value
            given[name] = True
            continue
        if not equals:
            value = rest.pop(0) if rest else ""
        if not value or value.startswith("-"):
            return None  # a missing value: the program says so
        given[name] = value
    return given


def main(given: dict[str, str | bool]) -> None:
    """Print the status table for the flags `parse` gave; exit as the ``status`` task
    does (its message on stderr, its exit code)."""
    try:
        ended = outcome(lambda: _status(given))
    except BrokenPipeError:
        reader_gone()
    if ended.message is not None:
        print(ended.message, file=sys.stderr)
    if ended.code:
        sys.exit(ended.code)


def _status(given: dict[str, str | bool]) -> ExitCode:
    from ..commands import status
    from .scope import options

    def text(name: str) -> str | None:
        value = given.get(name)
        return value if isinstance(value, str) else None

    chosen = options(text("hosts"), text("app-dir"), text("app"), "status", lb=text("lb"))
    return status.status(chosen, as_json=bool(given.get("json")))
