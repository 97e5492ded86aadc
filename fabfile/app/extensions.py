"""Extensions: jars and classes kept outside the WAR, delivered beside each version.

The app directory's ``extensions/`` holds ``WEB-INF/lib/*.jar`` and
``WEB-INF/classes/...`` (plugins, per-environment classes and properties). They
are part of a release like the WAR, staged by checksum, and listed in it as a
manifest (one ``SHA256  PATH`` line per file). On the node each version gets
its own copy, mounted ahead of the WAR's own classes by a ``<PreResources>``
in the context file the version is deployed with: two versions never share
one, so changing a jar for the new version cannot reach the old one.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from ..errors import ArtifactError, ConfigError
from .artifact import file_sha256

DIRECTORY = "extensions"
MOUNTS = ("WEB-INF/lib", "WEB-INF/classes")
_RESOURCE_SET = "org.apache.catalina.webresources.DirResourceSet"


@dataclasses.dataclass(frozen=True)
class Extension:
    """One file of ``extensions/``: where it goes in the webapp, and its checksum."""

    path: str  # e.g. WEB-INF/lib/plugin.jar
    source: Path
    sha256: str


def read(app_dir: Path) -> tuple[Extension, ...]:
    """The files under ``app_dir/extensions``; `ConfigError` for one Tomcat would not load."""
    root = app_dir / DIRECTORY
    if not root.is_dir():
        return ()
    found = []
    for file in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        relative = file.relative_to(root).as_posix()
        if not any(relative.startswith(mount + "/") for mount in MOUNTS):
            raise ConfigError(
                f"{file}: extensions hold WEB-INF/lib/*.jar and WEB-INF/classes/...; "
                "move it under one of them or remove it"
            )
        if relative.startswith("WEB-INF/lib/") and not _is_jar(file, relative):
            raise ConfigError(
                f"{file}: not a jar (zip) file directly in WEB-INF/lib, so Tomcat would not load it"
            )
        try:
            found.append(Extension(relative, file, file_sha256(file)))
        except OSError as error:
            raise ConfigError(
                f"{file}: cannot read it ({error.strerror}); fix or remove it"
            ) from None
    return tuple(found)


def _is_jar(file: Path, relative: str) -> bool:
    """A zip named *.jar directly in WEB-INF/lib (Tomcat looks no deeper)."""
    name = relative.removeprefix("WEB-INF/lib/")
    return name.endswith(".jar") and "/" not in name and zipfile.is_zipfile(file)


def manifest(found: tuple[Extension, ...]) -> str:
    """The release's record of its extensions: one ``SHA256  PATH`` line each."""
    return "".join(f"{item.sha256}  {item.path}\n" for item in found)


def entries(text: str) -> list[tuple[str, str]]:
    """(sha256, path) of each line of a manifest."""
    pairs = (line.partition("  ") for line in text.splitlines())
    return [(sha, path) for sha, gap, path in pairs if gap]


def own_context(war: Path) -> str:
    """The WAR's ``META-INF/context.xml`` ('' without one), checked to be well-formed:
    a context file given at deploy replaces it, so the tool adds to it (`context_xml`)."""
    try:
        with zipfile.ZipFile(war) as archive:
            text = archive.read("META-INF/context.xml").decode("utf-8")
    except KeyError:
        return ""
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise ArtifactError(f"{war}: cannot read META-INF/context.xml ({error})") from None
    try:
        ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ArtifactError(
            f"{war}: META-INF/context.xml is not well-formed XML ({error}); fix the WAR"
        ) from None
    return text


def context_xml(own: str, base: str) -> str:
    """The context file of one version: the WAR's own context, plus its extensions
    (``base``: the version's directory on the node) mounted ahead of the WAR's files."""
    root = ElementTree.fromstring(own) if own else ElementTree.Element("Context")
    resources = root.find("Resources")
    if resources is None:
        resources = ElementTree.SubElement(root, "Resources")
    for mount in MOUNTS:
        attributes = {"className": _RESOURCE_SET, "base": f"{base}/{mount}"}
        attributes["webAppMount"] = "/" + mount
        ElementTree.SubElement(resources, "PreResources", attributes)
    return ElementTree.tostring(root, encoding="unicode") + "\n"
