"""Reading ``.config``: the ini file naming the nodes and the deploy settings.

The raw `configparser` stays in this module; the rest of the tool sees frozen
`NodeConfig` objects, one per node, with every ``[host:NAME]`` override
already applied. Every mistake is reported with file, line and key.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import getpass
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .settings import KEYS, KEYS_BY_NAME

DEPLOY = "deploy"
HOST_PREFIX = "host:"
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")
_HOST = re.compile(r"^(?![-.])[A-Za-z0-9._-]+$|^[0-9A-Fa-f:]+$")  # a name, IPv4 or IPv6
_OPTION = re.compile(r"^(?P<key>[^\s=:#;][^=:]*?)\s*[=:]")


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """Everything needed to deploy to one node."""

    host: str
    user: str
    port: int
    identity_file: str
    known_hosts: str
    accept_unknown_hosts: bool
    connect_timeout: float
    status_url: str
    status_timeout: float
    ready_timeout: float
    error_grace: float
    poll_interval: float
    warmup: float
    restart: str
    pid_file: str
    war_path: str
    config_path: str
    jettyrc_path: str
    releases_dir: str
    keep_releases: int
    min_free_mb: int
    lb_socket: str
    lb_backend: str
    lb_server: str
    drain_timeout: float

    @property
    def url(self) -> str:
        """The node's /status URL."""
        return self.status_url.format(host=self.host)


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """The parsed ``.config`` of one app directory."""

    path: Path
    app: str
    nodes: tuple[NodeConfig, ...]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(node.host for node in self.nodes)

    def select(self, hosts: Iterable[str] | None) -> tuple[NodeConfig, ...]:
        """The nodes named by ``--hosts`` (all when None), in ``.config`` order."""
        if hosts is None:
            return self.nodes
        wanted = [h for h in hosts if h]
        if not wanted:
            raise UsageError("--hosts names no host; give NODE[,NODE]")
        unknown = [h for h in wanted if h not in self.hosts]
        if unknown:
            raise UsageError(
                f"--hosts names {', '.join(unknown)}, not in hosts of {self.path}; "
                f"known: {', '.join(self.hosts)}"
            )
        return tuple(node for node in self.nodes if node.host in wanted)


class _Lines:
    """Line numbers of sections and keys, which configparser does not keep."""

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[str, str], int] = {}
        self.sections: dict[str, int] = {}
        section = ""
        for number, line in enumerate(text.split("\n"), start=1):
            if match := _SECTION.match(line):
                section = match["name"].strip()
                self.sections.setdefault(section, number)
            elif match := _OPTION.match(line):
                self.keys.setdefault((section, match["key"].strip().lower()), number)

    def of(self, section: str, key: str | None = None) -> int:
        if key is None:
            return self.sections.get(section, 1)
        return self.keys.get((section, key), self.sections.get(section, 1))


def load(path: Path, app: str | None = None) -> AppConfig:
    """Read and check ``path``; raise `ConfigError` naming file, line and key."""
    app = app or path.resolve().parent.name
    text = _read(path)
    lines = _Lines(text)
    parser = _parse(path, text)
    if not parser.has_section(DEPLOY):
        raise ConfigError(f"{path}:1: no [deploy] section; add one with at least 'hosts = ...'")
    _check_sections(path, parser, lines)
    hosts = _hosts(path, parser, lines)
    _check_host_sections(path, parser, lines, hosts)
    nodes = tuple(_node(path, parser, lines, host, app) for host in hosts)
    _check_one_balancer(path, lines, nodes)
    return AppConfig(path=path, app=app, nodes=nodes)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; the app directory needs a .config (see README, '.config')"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read it ({error}); fix its permissions") from None


def _parse(path: Path, text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\0")
    try:
        parser.read_string(text, source=str(path))
    except configparser.DuplicateOptionError as error:
        raise ConfigError(
            f"{path}:{error.lineno}: key '{error.option}' appears twice in [{error.section}]; "
            "keep one"
        ) from None
    except configparser.DuplicateSectionError as error:
        raise ConfigError(
            f"{path}:{error.lineno}: section [{error.section}] appears twice; merge them"
        ) from None
    except configparser.MissingSectionHeaderError as error:
        raise ConfigError(
            f"{path}:{error.lineno}: a key before any section; start with [deploy]"
        ) from None
    except configparser.ParsingError as error:
        lineno = error.errors[0][0] if error.errors else 1
        raise ConfigError(f"{path}:{lineno}: not 'key = value' or '[section]'") from None
    except configparser.Error as error:
        raise ConfigError(f"{path}: {error.message}") from None
    return parser


def _check_sections(path: Path, parser: configparser.ConfigParser, lines: _Lines) -> None:
    for section in parser.sections():
        if section != DEPLOY and not section.startswith(HOST_PREFIX):
            raise ConfigError(
                f"{path}:{lines.of(section)}: unknown section [{section}]; "
                "sections are [deploy] and [host:NAME]"
            )
        for key in parser.options(section):
            _check_key(path, lines, section, key)


def _check_key(path: Path, lines: _Lines, section: str, key: str) -> None:
    where = f"{path}:{lines.of(section, key)}: [{section}] {key}"
    if key not in KEYS_BY_NAME:
        close = difflib.get_close_matches(key, KEYS_BY_NAME, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see the README's list of keys"
        raise ConfigError(f"{where}: unknown key; {hint}")
    if key == "hosts" and section != DEPLOY:
        raise ConfigError(f"{where}: hosts belongs in [deploy] only")


def _hosts(path: Path, parser: configparser.ConfigParser, lines: _Lines) -> list[str]:
    where = f"{path}:{lines.of(DEPLOY, 'hosts')}: [deploy] hosts"
    raw = parser.get(DEPLOY, "hosts", fallback="")
    hosts = [h.strip() for h in raw.replace("\n", ",").split(",") if h.strip()]
    if not hosts:
        raise ConfigError(f"{where}: no hosts; list the nodes, e.g. 'hosts = web1, web2'")
    seen: set[str] = set()
    for host in hosts:
        if host in seen:
            raise ConfigError(f"{where}: '{host}' is listed twice; list each node once")
        if not _HOST.match(host):
            raise ConfigError(f"{where}: '{host}' is not a host name or address")
        seen.add(host)
    return hosts


def _check_host_sections(
    path: Path, parser: configparser.ConfigParser, lines: _Lines, hosts: list[str]
) -> None:
    for section in parser.sections():
        name = section[len(HOST_PREFIX) :].strip()
        if section.startswith(HOST_PREFIX) and name not in hosts:
            raise ConfigError(
                f"{path}:{lines.of(section)}: [{section}] names a host that is not in "
                f"[deploy] hosts ({', '.join(hosts)}); add it there or remove the section"
            )


def _node(
    path: Path, parser: configparser.ConfigParser, lines: _Lines, host: str, app: str
) -> NodeConfig:
    section = _host_section(parser, host)
    values: dict[str, Any] = {"host": host}
    for key in KEYS:
        if key.name == "hosts":
            continue
        source = section if parser.has_option(section, key.name) else DEPLOY
        raw = parser.get(source, key.name, fallback=key.default)
        values[key.name] = _value(path, lines, source, key.name, raw)
    values["user"] = values["user"] or getpass.getuser()
    _fill_placeholders(values, host, app)
    if values["lb_socket"] and not values["lb_backend"]:
        raise ConfigError(
            f"{path}:{lines.of(DEPLOY, 'lb_socket')}: [deploy] lb_socket is set but "
            "lb_backend is not; name the haproxy backend that holds the nodes"
        )
    values["lb_server"] = values["lb_server"] or host
    return NodeConfig(**values)


_TEMPLATES = ("war_path", "config_path", "jettyrc_path", "releases_dir", "pid_file")


def _fill_placeholders(values: dict[str, Any], host: str, app: str) -> None:
    """``{host}`` and ``{app}`` in paths and in the restart command, for this node.

    A host name is letters, digits and ``._-`` (checked above), so it is one
    shell word as it is; the app name is quoted in the restart command.
    """
    for name in _TEMPLATES:
        values[name] = values[name].replace("{host}", host).replace("{app}", app)
    restart = values["restart"].replace("{host}", host)
    values["restart"] = restart.replace("{app}", shlex.quote(app))


def _check_one_balancer(path: Path, lines: _Lines, nodes: tuple[NodeConfig, ...]) -> None:
    """Every node behind the same haproxy, or none: the rollout drains through one."""
    sockets = {node.lb_socket for node in nodes}
    if len(sockets) > 1:
        odd = next(node for node in nodes if node.lb_socket != nodes[0].lb_socket)
        section = f"{HOST_PREFIX}{odd.host}"
        raise ConfigError(
            f"{path}:{lines.of(section, 'lb_socket')}: [{section}] lb_socket differs from "
            f"{nodes[0].host}'s; set lb_socket once, in [deploy]"
        )


def _host_section(parser: configparser.ConfigParser, host: str) -> str:
    """The ``[host:NAME]`` section of ``host``, however it is spaced."""
    for section in parser.sections():
        if section.startswith(HOST_PREFIX) and section[len(HOST_PREFIX) :].strip() == host:
            return section
    return f"{HOST_PREFIX}{host}"


def _value(path: Path, lines: _Lines, section: str, name: str, raw: str | None) -> Any:
    where = f"{path}:{lines.of(section, name)}: [{section}] {name}"
    if raw is None:
        raise ConfigError(f"{where}: missing; it has no default")
    try:
        return KEYS_BY_NAME[name].parse(raw)
    except ValueError as error:
        reason = str(error)
        shown = raw.strip()[:60]
        raise ConfigError(f"{where} = {shown!r}: {reason}") from None
