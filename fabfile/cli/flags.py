"""The flags of every command, in one table.

`FLAGS` gives each flag its short letter (the same in every command), the name
of its value and its help line; `fabfile.cli.tasks.DeployTask` builds Invoke's
arguments from it, so ``deploy``, ``inv`` and ``fab`` agree, and the status table's
fast path (`fabfile.cli.bare`) reads the same spellings. No Invoke here: the fast
path does not load it.
"""

from __future__ import annotations

import dataclasses

LIMIT = 20


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one flag is spelled and explained: ``-H, --hosts LIST  Only these nodes...``."""

    short: str
    value: str  # the value's name in help; empty for an on/off flag
    help: str


FLAGS = {
    "hosts": Spec("H", "LIST", "Only these nodes: a,b."),
    "lb": Spec("", "LIST", "Only these balancers of lb_socket: a,b."),
    "app-dir": Spec("C", "DIR", "The app directory (default: the current directory)."),
    "app": Spec("", "NAME", "An app by name, in $DEPLOY_APPS_ROOT (default ./apps)."),
    "artifact": Spec("", "WAR", "The WAR (default: the newest version)."),
    "latest": Spec("l", "", "Use the newest WAR by Maven version."),
    "force": Spec("f", "", "Redo nodes on it; past switch, heap, live-lock checks."),
    "now": Spec("", "", "Undeploy old versions now, sessions or not."),
    "no-switch": Spec("", "", "Blue/green: verify the idle colours, no switch."),
    "dry-run": Spec("", "", "Print the plan and config diffs; change nothing."),
    "batch": Spec("b", "N|P%", "Nodes at once (default: .config batch)"),
    "confirm": Spec("", "", "Ask to go on after the canary."),
    "lock-wait": Spec("", "N", "Wait up to N seconds for a lock another run holds."),
    "json": Spec("j", "", "As JSON."),
    "limit": Spec("n", "N", f"Last N records (default {LIMIT})."),
    "stats": Spec("", "", "Delivery metrics of the runs instead."),
    "since": Spec("", "AGE", "Only the runs of the last AGE: 12h, 30d, 2w."),
    "run": Spec("", "N", "A run by its # in history (default: the last)."),
    "output": Spec("o", "FILE", "Draw it here: .svg or .html."),
}
DRY_RUN = (
    "the dry run is `deploy WAR --dry-run` (and `deploy rollback --dry-run`, `deploy switch "
    "--dry-run`: each prints the plan); nothing was done"
)
