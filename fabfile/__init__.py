"""Zero-downtime deploys of WAR files to Jetty clusters, from one coordinator.

This package is also the Fabric task library: ``fab -l`` finds the tasks here.
"""

from __future__ import annotations

__version__ = "0.1.0"


from .cli.tasks import namespace

ns = namespace()
