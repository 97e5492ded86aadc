"""How a `Plan` is made: the release, from the app directory, its WARs and its history.

Free of the command line and of the nodes: the commands (`fabfile.commands`) ask for a plan,
`fabfile.engine.rollout.Rollout` runs it. What the release holds depends on the app's
strategy (`fabfile.engine.strategies`): one that deploys versions side by side takes
the app directory's extensions/ and the WAR's own context.xml along.
"""

from __future__ import annotations

from pathlib import Path

from ..app import artifact as artifacts
from ..app import extensions
from ..app.appdir import AppDir
from ..app.artifact import Artifact
from ..app.config import NodeConfig
from ..app.maven import MavenVersion
from ..app.overrides import HostFiles
from ..app.release import Release
from ..app.warcache import Known
from ..cluster import probe
from ..errors import ArtifactError, ConfigError
from ..records.archive import Archive
from ..records.history import Action, History, Result
from . import strategies


def release_of(app: AppDir, found: Artifact) -> tuple[Release, dict[str, Path]]:
    """The release a WAR makes with the app directory's config files, and their sources.

    Every host's merged files are kept in the archive (`fabfile.records.archive`): the
    sources are those copies, so what is sent is what was checksummed.
    """
    files = app.overrides()
    versioned = strategies.kind(app.config).versioned
    extra = _extensions(app, versioned)
    sources = {found.sha256: found.path} | {item.sha256: item.source for item in extra}
    own = []
    for host in app.config.hosts:
        mine = files.files(host)
        sources |= {file.sha256: Archive(app.path).keep(file.data) for file in mine}
        if mine != files.base:
            own.append(f"{host} {_shas(mine)}")
    base = files.base
    release = Release(
        war=found.sha256,
        config=base.config.sha256,
        jettyrc=base.jettyrc.sha256,
        version=str(found.version),
        coordinates=found.coordinates,
        war_name=found.path.name,
        extensions=extensions.manifest(extra),
        context=extensions.own_context(found.path) if versioned else "",
        logback=base.logback.sha256 if base.logback else "",
        hosts="\n".join(sorted(own)),  # one order, so equal releases compare equal
    )
    sources |= {file.sha256: Archive(app.path).keep(file.data) for file in base}
    return release, sources


def _shas(files: HostFiles) -> str:
    """One host's line of `Release.hosts` after the host name."""
    logback = files.logback.sha256 if files.logback else "-"
    return f"{files.config.sha256} {files.jettyrc.sha256} {logback}"


def _extensions(app: AppDir, versioned: bool) -> tuple[extensions.Extension, ...]:
    """The app's extensions/; only a strategy that deploys each release as a version of
    its own (``versioned``) mounts them beside it."""
    found = extensions.read(app.path)
    if found and not versioned:
        able = ", ".join(name for name, kind in strategies.REGISTRY.items() if kind.versioned)
        raise ConfigError(
            f"{app.path / extensions.DIRECTORY}: extensions are delivered by strategy = "
            f"{able} only ({app.config.path} has strategy = {app.config.strategy}); "
            "put them in the WAR, or move the directory away"
        )
    return found


def undo_line(app: AppDir, release: Release, rollback: str) -> str:
    """The rollback command, only when a rollback will find something to go back to."""
    earlier = [held for held in History(app.history_path).stack() if held != release]
    version = MavenVersion(release.version)
    older = [path for found, path in artifacts.candidates(app.path, app.name) if found < version]
    if earlier or older:
        return f"To roll back: {rollback}"
    return "There is no earlier release to roll back to (no history and no older WAR here)."


def rollback_target(app: AppDir, nodes: tuple[NodeConfig, ...]) -> tuple[Release, dict[str, Path]]:
    """The release before the current one, and the coordinator's copies of its files.

    After a run that failed or was cut off (its coordinator died: the history has its
    start and no end), the newest release that was live on every node before it
    (`fabfile.records.history.History.previous`). With no history: the WAR just below
    the highest version the nodes run.
    """
    previous = History(app.history_path).previous()
    if previous is not None:
        return previous, _local_sources(app, previous)
    running = [s.version for s in probe.probe_all(nodes) if s.ok]
    if not running:
        raise ArtifactError(
            f"no history in {app.history_path} and no node answers /status, so there is no "
            "'previous' version; deploy a WAR explicitly"
        )
    top = max(MavenVersion(v) for v in running)
    lower = [path for version, path in artifacts.candidates(app.path, app.name) if version < top]
    if not lower:
        raise ArtifactError(
            f"no history and no WAR below {top} in {app.path}; deploy one explicitly"
        )
    return release_of(app, artifacts.read(lower[-1], app.name, Known(app.path)))


def switch_target(app: AppDir, idle: tuple[NodeConfig, ...]) -> tuple[Release, dict[str, Path]]:
    """Blue/green: the release the ``idle`` colours run, as the history knows it.

    A switch cut short is aimed at again: its hosts' idle colours differ by now.
    """
    records = History(app.history_path).records()
    last = records[-1] if records else None
    if last and last.action == Action.SWITCH and last.outcome != Result.OK and last.release:
        return last.release, _local_sources(app, last.release)
    statuses = [s for s in probe.probe_all(idle) if s.ok]
    versions = sorted({s.version for s in statuses})
    if not versions:
        raise ArtifactError(
            "no idle colour answers /status with a version, so there is nothing to switch to; "
            "deploy a WAR (it goes to the idle colours)"
        )
    if len(versions) > 1:
        seen = ", ".join(f"{s.host}: {s.version}" for s in statuses)
        raise ArtifactError(
            f"the idle colours run different versions ({seen}); deploy one of them explicitly"
        )
    known = [r.release for r in records if r.release and r.release.version == versions[0]]
    if not known:
        raise ArtifactError(
            f"the idle colours run {versions[0]}, which this app directory's history never "
            "deployed; deploy that WAR explicitly"
        )
    return known[-1], _local_sources(app, known[-1])


def _local_sources(app: AppDir, release: Release) -> dict[str, Path]:
    """Coordinator files that match the release's blobs, for nodes that lack one."""
    sources: dict[str, Path] = {}
    war = app.path / release.war_name
    if war.is_file() and (Known(app.path).sha256(war) or artifacts.file_sha256(war)) == release.war:
        sources[release.war] = war
    for sha in release.blobs - sources.keys():
        if (kept := Archive(app.path).find(sha)) is not None:
            sources[sha] = kept
    for item in extensions.read(app.path):
        if item.sha256 in release.blobs:
            sources[item.sha256] = item.source
    return sources
