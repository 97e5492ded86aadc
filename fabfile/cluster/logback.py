"""`deploy logging`: a new logback.xml on every node, live, without a restart.

logback rereads its configuration file when it changes if the file says
``scan="true"`` (every ``scanPeriod``, one minute by default). So the push is:
stage the file by checksum, rename it over ``logback_path`` (atomic: logback
never reads half a file), record it in the node's release, then verify on
``/status`` that the *same* JVM (``pid`` and ``started`` facts, or the process
on the status port) now reports the file's root level (``log-level``). A node
where that does not happen within the scan period gets its previous file back.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from xml.etree import ElementTree

from ..app.overrides import File, Overrides
from ..app.release import Release
from ..errors import ConfigError, NodeError
from . import inflight, probe
from .node import Node
from .probe import Status

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)\s*$")
_UNITS = {"": 0.001, "millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEFAULT_SCAN = 60.0  # logback's own default scanPeriod


@dataclasses.dataclass(frozen=True)
class Setting:
    """What one logback.xml asks for: how often logback looks, and the root level."""

    file: File
    scan_seconds: float
    root_level: str  # '' when the file sets none


def read_setting(file: File, where: str) -> Setting:
    """A logback.xml that logback will reread by itself; `ConfigError` if it will not."""
    root = ElementTree.fromstring(file.data)  # well-formed: `fabfile.app.overrides` checked it
    if root.get("scan", "false").strip().lower() != "true":
        raise ConfigError(
            f'{where}:1: <configuration> has no scan="true": logback would not reread it '
            'without a restart. Add scan="true" (and scanPeriod), or deploy a WAR, which restarts'
        )
    period = root.get("scanPeriod", "")
    match = _DURATION.match(period) if period else None
    if period and match is None:
        raise ConfigError(f"{where}:1: scanPeriod={period!r} is not a duration like '30 seconds'")
    unit = match["unit"].lower().removesuffix("s") if match else ""
    if match is not None and unit not in _UNITS:
        raise ConfigError(f"{where}:1: scanPeriod={period!r}: unknown unit {match['unit']!r}")
    scan = float(match["n"]) * _UNITS[unit] if match else DEFAULT_SCAN
    level = next((e.get("level", "") for e in root if e.tag == "root"), "")
    return Setting(file, scan, level.strip().upper())


def settings(files: Overrides, hosts: tuple[str, ...]) -> dict[str, Setting]:
    """Each host's logback.xml, checked; `ConfigError` before any node is touched."""
    if files.base.logback is None:
        raise ConfigError(
            f"{files.path}: no logback.xml here; put the logging configuration there to push it"
        )
    found = {}
    for host in hosts:
        logback = files.files(host).logback
        assert logback is not None
        own = files.path / f"logback.{host}.xml"
        found[host] = read_setting(
            logback, str(own if own.exists() else files.path / "logback.xml")
        )
    return found


@dataclasses.dataclass
class Push:
    """One node's push: what it ran before, and what was seen."""

    node: Node
    setting: Setting
    before: Release | None = None
    outcome: str = "untouched"
    detail: str = ""
    touched: bool = False  # the file on the node was replaced (and maybe put back)

    @property
    def label(self) -> str:
        return self.node.config.label

    @property
    def ok(self) -> bool:
        """The node runs the file now: pushed and verified, or it had it already."""
        return self.outcome in ("deployed", "unchanged")


def push_all(pushes: list[Push], sources: dict[str, Path]) -> None:
    """Every host at once: a logging change restarts nothing, so there is no order to
    keep. The instances of a host share its releases directory: one after the other."""
    hosts: dict[str, list[Push]] = {}
    for push in pushes:
        hosts.setdefault(push.node.host, []).append(push)

    def host_pushes(mine: list[Push]) -> None:
        for push in mine:
            _push(push, sources)

    inflight.each(host_pushes, list(hosts.values()))  # an interruption cuts them short


def _push(push: Push, sources: dict[str, Path]) -> None:
    node, setting = push.node, push.setting
    try:
        holdings = node.holdings()
        push.before = holdings.current
        before = probe.probe(node.config)
        if not before.ok:
            raise NodeError(f"{push.label}: /status answers {before.describe()!r}; fix it first")
        jvm = _jvm(node, before)
        sha = setting.file.sha256
        running = before.fact("log-level").upper()
        same_level = not running or not setting.root_level or running == setting.root_level
        held = push.before is None or push.before.logback == sha
        if holdings.file("logback") == sha and held and same_level:
            # Replacing it would only make logback reload the same file, and for a moment
            # (logback resets, then configures) the node would log at logback's default.
            push.outcome = "unchanged"
            push.detail = f"already in place, log-level {before.fact('log-level') or '?'} ({jvm})"
            return
        if sha not in holdings.blobs:
            node.upload(sources[sha], sha)
        push.touched = True
        if push.before is None:  # no release of ours to record it in: the file alone
            node.place(sha, node.config.logback_path, sources)
        else:
            node.install(dataclasses.replace(push.before, logback=sha), ("logback",), sources)
        push.outcome = "installed, not verified"
        push.detail = _verify(node, setting, before, jvm)
        push.outcome = "deployed"
    except NodeError as error:
        push.detail = str(error)
        if push.touched:
            push.detail += _put_back(push)
        push.outcome = "failed"


def _jvm(node: Node, status: Status) -> str:
    """Which JVM answers: /status's pid and start time, or the process on the status port."""
    if status.fact("pid"):
        return f"pid {status.fact('pid')}, started {status.fact('started') or '?'}"
    listeners = node.port_report().listeners
    return f"pid {listeners[0].pid}" if listeners else "?"


def _same_jvm(node: Node, status: Status, jvm: str) -> None:
    now = _jvm(node, status)
    if now != jvm:
        raise NodeError(f"{node.config.label}: the JVM changed ({jvm} -> {now}): it restarted")


def _verify(node: Node, setting: Setting, before: Status, jvm: str) -> str:
    """Wait until the same JVM reports the new root level; the detail for the history."""
    config, wanted = node.config, setting.root_level
    deadline = time.monotonic() + setting.scan_seconds + config.ready_timeout
    while True:
        status = probe.probe(config)
        if status.ok and status.fact("pid"):  # cheap: the JVM says who it is every poll
            _same_jvm(node, status, jvm)
        level = status.fact("log-level").upper()
        if status.ok and (not wanted or not level or level == wanted):
            break
        if time.monotonic() >= deadline:
            seen = status.describe() if not status.ok else f"log-level {level}"
            raise NodeError(
                f"{config.label}: /status still reports {seen} "
                f"{setting.scan_seconds + config.ready_timeout:g} s after the push, expected "
                f"log-level {wanted}: did logback load {config.logback_path}, with scan on?"
            )
        inflight.pause(max(config.poll_interval, 0.2))  # a stopped fan-out ends it
    _same_jvm(node, status, jvm)  # without a pid fact: the status port, once, over SSH
    was = before.fact("log-level").upper()
    if not level:
        return f"same JVM ({jvm}); /status reports no log-level, so the level was not checked"
    return f"log-level {was or '?'} -> {level}, same JVM ({jvm})"


def _put_back(push: Push) -> str:
    """The node's previous logback.xml and release record, after a failed push."""
    if push.before is None or not push.before.logback:
        return "; it had no logback.xml from this tool before, so the new one stays"
    try:
        push.node.install(push.before, only=("logback",))
    except NodeError as error:
        return f"; its previous logback.xml could not be put back ({error})"
    return "; its previous logback.xml was put back"
