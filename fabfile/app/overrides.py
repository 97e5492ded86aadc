"""Per-node configuration: the cluster's files, each host's overrides, merged.

Beside the cluster's files in the app directory, a host may have its own:

- ``config.HOST.properties``: only the keys whose value differs on HOST. Its
  merged file is the cluster's ``config.properties`` with those lines replaced
  in place (as the override spells them); every other line, comment and escape
  stays as it is. A key the cluster file lacks is an error: a typo must not add
  a setting.
- ``.jettyrc.HOST``: ``NAME=value`` lines replacing the cluster's ``.jettyrc``
  assignments of the same variables (e.g. a bigger heap in ``JAVA_OPTIONS``).
- ``logback.HOST.xml``: the whole logging configuration of HOST.

A host without an override file gets the cluster's file byte for byte, so its
checksum is the cluster's and nothing is sent twice. The instances of a host
share its files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shlex
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ConfigError

# javaproperties and ElementTree are imported by the functions that parse a file: every
# command finds the app directory through this module, and the status table parses none.

PROPERTIES = "config.properties"
JETTYRC = ".jettyrc"
LOGBACK = "logback.xml"
_PATTERNS = {
    PROPERTIES: re.compile(r"^config\.(?P<host>.+)\.properties$"),
    JETTYRC: re.compile(r"^\.jettyrc\.(?P<host>.+)$"),
    LOGBACK: re.compile(r"^logback\.(?P<host>.+)\.xml$"),
}
_ASSIGNMENT = re.compile(r"^\s*(?P<export>export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=")


@dataclasses.dataclass(frozen=True)
class File:
    """One configuration file as one host receives it: its name, bytes and checksum."""

    name: str  # config.properties, .jettyrc or logback.xml
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclasses.dataclass(frozen=True)
class HostFiles:
    """What one host receives: config.properties, .jettyrc and, if any, logback.xml."""

    config: File
    jettyrc: File
    logback: File | None

    def __iter__(self) -> Iterator[File]:
        return iter((self.config, self.jettyrc, *([self.logback] if self.logback else [])))


class Overrides:
    """The app directory's configuration files, read and checked once."""

    def __init__(self, app_path: Path, hosts: Iterable[str], config_path: Path) -> None:
        self.path = app_path
        self.hosts = tuple(hosts)
        self.config_path = config_path  # .config, named in errors about unknown hosts
        self.base = HostFiles(
            _properties(app_path / PROPERTIES),
            _required(app_path / JETTYRC),
            _logback(app_path / LOGBACK) if (app_path / LOGBACK).exists() else None,
        )
        self.found = self._overrides()

    def files(self, host: str) -> HostFiles:
        """The files ``host`` receives, its overrides applied."""
        own = self.found.get(host, {})
        config, jettyrc, logback = (own.get(kind) for kind in (PROPERTIES, JETTYRC, LOGBACK))
        return HostFiles(
            _merge_properties(self.base.config, config) if config else self.base.config,
            _merge_jettyrc(self.base.jettyrc, jettyrc) if jettyrc else self.base.jettyrc,
            _logback(logback) if logback else self.base.logback,
        )

    def _overrides(self) -> dict[str, dict[str, Path]]:
        found: dict[str, dict[str, Path]] = {}
        for name in _candidates(self.path):
            path = self.path / name
            kind, host = _kind_and_host(name)
            if host not in self.hosts:
                raise ConfigError(
                    f"{path}:1: {host!r} is not in hosts of {self.config_path} "
                    f"({', '.join(self.hosts)}); name the file after one of them, or remove it"
                )
            if kind == LOGBACK and self.base.logback is None:
                raise ConfigError(
                    f"{path}:1: an override without {self.path / LOGBACK}; add the cluster's "
                    "logback.xml (the other hosts get it), or remove this file"
                )
            _check(kind, path, self.path)
            found.setdefault(host, {})[kind] = path
        return found


def paths(app_path: Path) -> list[Path]:
    """Every per-host file in the app directory (for the archive)."""
    return [app_path / name for name in _candidates(app_path)]


def _candidates(app_path: Path) -> list[str]:
    names = [p.name for p in app_path.iterdir() if p.is_file()]
    return sorted(n for n in names if any(p.match(n) for p in _PATTERNS.values()))


def _kind_and_host(name: str) -> tuple[str, str]:
    for kind, pattern in _PATTERNS.items():
        if match := pattern.match(name):
            return kind, match["host"]
    raise AssertionError(name)


def _check(kind: str, path: Path, app_path: Path) -> None:
    """Read an override now, so a mistake in it stops every command before any node."""
    if kind == PROPERTIES:
        _properties_entries(path, app_path / PROPERTIES)
    elif kind == JETTYRC:
        _jettyrc_entries(path, _read(app_path / JETTYRC).decode("latin-1"), app_path / JETTYRC)
    else:
        _logback(path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; every node gets it (an empty file is fine)") from None
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read it ({error.strerror}); fix its permissions"
        ) from None


def _required(path: Path) -> File:
    return File(path.name, _read(path))


def _properties(path: Path) -> File:
    import javaproperties

    data = _read(path)
    try:
        javaproperties.loads(data.decode("latin-1"))
    except Exception as error:  # javaproperties raises its own family on bad escapes
        raise ConfigError(f"{path}: not a valid .properties file ({error})") from None
    return File(PROPERTIES, data)


def _logback(path: Path) -> File:
    """A logback configuration: well-formed XML whose root is <configuration>."""
    from xml.etree import ElementTree

    data = _read(path)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        line, column = error.position
        raise ConfigError(
            f"{path}:{line}: not well-formed XML ({error.msg.split(':')[0]}, column {column + 1}); "
            "fix it: logback would keep its old configuration and log an error"
        ) from None
    if root.tag != "configuration":
        raise ConfigError(
            f"{path}:1: the root element is <{root.tag}>, not logback's <configuration>"
        )
    return File(LOGBACK, data)


def _properties_entries(path: Path, base: Path) -> list[tuple[str, str]]:
    """The override's keys and their source lines; each key must be in the cluster's file."""
    import javaproperties

    text = _read(path).decode("latin-1")
    known = set(javaproperties.loads(_read(base).decode("latin-1")))
    entries, line = [], 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                if element.key not in known:
                    raise ConfigError(
                        f"{path}:{line}: key {element.key!r} is not in {base}; an override only "
                        f"changes a key the cluster has: add it to {base.name} first (with the "
                        "other nodes' value), or fix the spelling"
                    )
                entries.append((element.key, element.source))
            line += element.source.count("\n")
    except ConfigError:
        raise
    except Exception as error:  # javaproperties raises its own family on bad escapes
        raise ConfigError(f"{path}:{line}: not a valid .properties line ({error})") from None
    return entries


def _merge_properties(base: File, override: Path) -> File:
    """The cluster's lines, with each overridden key's last line replaced by the override's."""
    import javaproperties

    replacing = dict(_properties_entries(override, override.with_name(PROPERTIES)))
    elements = list(javaproperties.parse(base.data.decode("latin-1")))
    last = {e.key: i for i, e in enumerate(elements) if isinstance(e, javaproperties.KeyValue)}
    lines = []
    for index, element in enumerate(elements):
        key = getattr(element, "key", None)
        if key in replacing and last[key] == index:
            lines.append(replacing[key].rstrip("\r\n") + "\n")
        else:
            lines.append(element.source)
    return File(PROPERTIES, "".join(lines).encode("latin-1"))


def _jettyrc_entries(path: Path, base: str, base_path: Path) -> dict[str, str]:
    """The override's ``NAME=value`` lines by name; each must assign a variable the cluster's
    .jettyrc assigns on one line (lines split at "\n" only: latin-1 text may hold \x85)."""
    known = {m["name"] for line in base.split("\n") if (m := _ASSIGNMENT.match(line))}
    entries: dict[str, str] = {}
    for number, line in enumerate(_read(path).decode("latin-1").split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None or _continues(line):
            raise ConfigError(
                f"{path}:{number}: not a one-line 'NAME=value'; a node's .jettyrc only sets "
                "variables, each on one line"
            )
        if match["name"] not in known:
            raise ConfigError(
                f"{path}:{number}: {match['name']} is not set in {base_path}; an override only "
                f"changes a variable the cluster sets: add it there first, or fix the spelling"
            )
        entries[match["name"]] = line.strip()
    return entries


def _continues(line: str) -> bool:
    """Whether a shell line goes on on the next one (an open quote, a trailing backslash)."""
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return True
    return False


def _merge_jettyrc(base: File, override: Path) -> File:
    """The cluster's .jettyrc with each overridden variable's last assignment replaced."""
    text = base.data.decode("latin-1")
    replacing = _jettyrc_entries(override, text, override.with_name(JETTYRC))
    lines = text.split("\n")
    last = {m["name"]: i for i, line in enumerate(lines) if (m := _ASSIGNMENT.match(line))}
    for name, line in replacing.items():
        index = last[name]
        if _continues(lines[index]):
            raise ConfigError(
                f"{override.with_name(JETTYRC)}:{index + 1}: {name} spans several lines; put it "
                f"on one line to override it in {override.name}"
            )
        old = _ASSIGNMENT.match(lines[index])
        export = old["export"] if old and old["export"] and not line.startswith("export") else ""
        lines[index] = f"{export}{line}"
    return File(JETTYRC, "\n".join(lines).encode("latin-1"))
