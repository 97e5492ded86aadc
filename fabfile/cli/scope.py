"""What a command line names: the app directory, its nodes and balancers, as `Options`.

Shared by the Invoke tasks (`fabfile.cli.tasks`) and the status table's fast path
(`fabfile.cli.bare`), so both read ``--hosts``, ``--lb``, ``--app-dir`` and ``--app``
alike and archive the config files as the command sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:  # imported when a command runs, not when --help is built
    from ..commands.options import Options


def options(
    hosts: str | None,
    app_dir: str | None,
    app: str | None,
    command: str,
    lock_wait: float = 0.0,
    lb: str | None = None,
) -> Options:
    """The app directory and nodes a command means; its config files are archived as
    the command sees them (`fabfile.records.archive`)."""
    if lock_wait < 0:
        raise UsageError(f"--lock-wait {lock_wait:g}: the seconds to wait cannot be negative")
    from ..app import appdir
    from ..commands.options import Options
    from ..records.archive import Archive

    chosen = tuple(h.strip() for h in hosts.split(",")) if hosts else None
    balancers = tuple(b.strip() for b in lb.split(",") if b.strip()) if lb is not None else None
    found = appdir.locate(app_dir, app)
    Archive(found.path).snapshot(found.config_files(), command)
    return Options(found, chosen, lock_wait=lock_wait, lbs=balancers)
