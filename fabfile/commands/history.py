"""``deploy history``: what was deployed, when, by whom."""

from __future__ import annotations

import json

from ..errors import (
    ExitCode,
)
from ..records.history import History
from ..view import tables
from .options import Options


def history(options: Options, limit: int = 20, as_json: bool = False) -> ExitCode:
    """The last ``limit`` records, as a table or, for scripts, as JSON (a list, oldest first)."""
    every = History(options.app.history_path).entries()
    entries = every[-limit:]
    first = len(every) - len(entries) + 1
    if as_json:
        numbered = [{"run": n} | e for n, e in enumerate(entries, start=first)]
        options.console.file.write(json.dumps(numbered, indent=2) + "\n")
    elif not entries:
        options.console.print(f"no deploys recorded in {options.app.history_path} yet")
    else:
        options.console.print(tables.history_table(entries, first))
    return ExitCode.OK
