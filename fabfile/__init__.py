"""Zero-downtime deploys of WAR files to Jetty clusters, from one coordinator.

This package is also the Fabric task library: ``fab -l`` finds the tasks here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .version import __version__ as __version__

if TYPE_CHECKING:
    from invoke import Collection

    ns: Collection


def __getattr__(name: str) -> object:
    """``ns``, the tasks for ``fab`` and ``inv`` (``from fabfile import ns``), built on first
    use: importing any part of the package (``deploy``, ``deploy --version``) must not
    load Invoke's tasks, let alone every command they call."""
    if name != "ns":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .cli.tasks import namespace

    built = globals()["ns"] = namespace()
    return built
