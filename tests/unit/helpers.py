"""Small builders shared by the unit tests."""

from __future__ import annotations

from fabfile.app.release import Release


def release(n: int, war_name: str | None = None) -> Release:
    """A release whose three checksums are unique to ``n``."""
    return Release(
        war=f"{n:064x}",
        config=f"{n + 1000:064x}",
        jettyrc=f"{n + 2000:064x}",
        version=f"1.0.{n}",
        coordinates="com.example:shop",
        war_name=war_name or f"shop-1.0.{n}.war",
    )
