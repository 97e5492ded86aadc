"""Understanding a WAR: who it is (groupId, artifactId, version) and its checksum.

The identity comes from the WAR's own ``META-INF/maven/*/*/pom.properties``,
as Maven wrote it; the file name is only a fallback for ordering files that
will not be deployed. A WAR that is deployed must carry pom.properties.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import zipfile
import zlib
from pathlib import Path
from xml.etree import ElementTree

import javaproperties

from ..errors import ArtifactError
from . import warcache
from .maven import MavenVersion
from .warcache import Known

_POM = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A WAR file on the coordinator and what it says it is."""

    path: Path
    group_id: str
    artifact_id: str
    version: MavenVersion
    digest: str = ""  # the sha256, when it is already known

    @property
    def coordinates(self) -> str:
        return f"{self.group_id}:{self.artifact_id}"

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @functools.cached_property
    def sha256(self) -> str:
        return self.digest or file_sha256(self.path)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so a large WAR is not held in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read(path: Path, app: str, known: Known | None = None) -> Artifact:
    """The deployable WAR at ``path``; raise `ArtifactError` saying what is wrong.

    With ``known`` (the app directory's checked WARs), a WAR checked before and
    unchanged since is not read whole nor hashed again, and one read now is noted.
    """
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file; give a WAR in the app directory")
    if path.stat().st_size == 0:
        raise ArtifactError(f"{path}: the file is empty; copy the artifact again")
    digest = known.sha256(path) if known else None
    stamped = warcache.stamp(path)  # as it was before we read it
    pom = _pom_properties(path, check=digest is None, app=app)
    if pom is None:
        raise ArtifactError(
            f"{path}: no META-INF/maven/*/*/pom.properties inside; "
            "build it with Maven (or add the file) so its version can be verified"
        )
    missing = [k for k in ("groupId", "artifactId", "version") if not pom.get(k)]
    if missing:
        raise ArtifactError(f"{path}: pom.properties lacks {', '.join(missing)}")
    if pom["artifactId"] != app:
        raise ArtifactError(
            f"{path}: its pom.properties says artifactId {pom['artifactId']!r}, "
            f"but this app directory is {app!r}; pick this app's WAR"
        )
    found = Artifact(path, pom["groupId"], pom["artifactId"], MavenVersion(pom["version"]))
    if digest:
        return dataclasses.replace(found, digest=digest)
    if known:
        known.remember(path, found.sha256, stamped)
    return found


def _pom_properties(path: Path, check: bool, app: str = "") -> dict[str, str] | None:
    """pom.properties of the WAR; ``check`` also verifies every entry's CRC."""
    try:
        with zipfile.ZipFile(path) as war:
            names = [n for n in war.namelist() if _POM.match(n)]
            if not names:
                return None
            # A WAR may also carry a dependency's pom.properties: prefer the app's own.
            names.sort(key=lambda name: name.split("/")[3] != app)
            if check:
                _check_entries(path, war)
            text = war.read(names[0]).decode("latin-1")
    except (
        zipfile.BadZipFile,
        EOFError,
        OSError,
        zlib.error,
        RuntimeError,
        NotImplementedError,
    ) as error:
        raise ArtifactError(
            f"{path}: not a valid WAR (zip) file ({error}); it may be truncated, copy it again"
        ) from None
    try:
        return dict(javaproperties.loads(text))
    except Exception as error:  # javaproperties raises its own family on bad escapes
        raise ArtifactError(f"{path}: pom.properties inside cannot be read ({error})") from None


def _check_entries(path: Path, war: zipfile.ZipFile) -> None:
    """Read every entry so a damaged one is found here, not by Jetty on a node."""
    for info in war.infolist():
        try:
            with war.open(info) as entry:
                while entry.read(1 << 20):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise ArtifactError(
                f"{path}: {info.filename} inside is corrupt ({error}); copy the artifact again"
            ) from None


def version_of(path: Path, app: str) -> MavenVersion | None:
    """The WAR's version for ordering: pom.properties, else the file name."""
    try:
        pom = _pom_properties(path, check=False, app=app)
    except ArtifactError:
        pom = None
    if pom and pom.get("artifactId") == app and pom.get("version"):
        return MavenVersion(pom["version"])
    return _name_version(path, app)


def _name_version(path: Path, app: str) -> MavenVersion | None:
    """The version a file name like ``app-1.0.3.war`` announces."""
    stem = path.name.removesuffix(".war")
    prefix = f"{app}-"
    if not stem.startswith(prefix) or len(stem) == len(prefix):
        return None
    return MavenVersion(stem[len(prefix) :])


def candidates(app_dir: Path, app: str) -> list[tuple[MavenVersion, Path]]:
    """The WARs in the app directory, oldest first by Maven version."""
    found = []
    for path in app_dir.glob("*.war"):
        version = version_of(path, app)
        if version is not None:
            found.append((version, path))
    return sorted(found, key=lambda pair: pair[0])


def newest(app_dir: Path, app: str, known: Known | None = None) -> Artifact:
    """The newest WAR by Maven version, read and checked."""
    found = candidates(app_dir, app)
    if not found:
        raise ArtifactError(f"{app_dir}: no {app}-VERSION.war here; copy the artifact first")
    return read(found[-1][1], app, known)


def distributable(path: Path) -> bool | None:
    """Whether the WAR's ``WEB-INF/web.xml`` declares ``<distributable/>`` (sessions
    replicated between cluster members); None when the WAR has no readable web.xml."""
    try:
        with zipfile.ZipFile(path) as war:
            text = war.read("WEB-INF/web.xml")
        root = ElementTree.fromstring(text)
    except (OSError, KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return None
    return any(element.tag.rpartition("}")[2] == "distributable" for element in root)
