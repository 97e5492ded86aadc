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
    every = History(options.app.history_path).records()
    records = every[-limit:]
    first = len(every) - len(records) + 1
    if as_json:
        numbered = [{"run": n} | r.to_json() for n, r in enumerate(records, start=first)]
        options.console.file.write(json.dumps(numbered, indent=2) + "\n")
    elif not records:
        options.console.print(f"no deploys recorded in {options.app.history_path} yet")
    else:
        options.console.print(tables.history_table(records, first))
    return ExitCode.OK
