"""Reading ``.config``: the ini file naming the nodes and the deploy settings.

The raw `configparser` stays in this module; the rest of the tool sees frozen
`NodeConfig` objects, one per node, with every ``[host:NAME]`` override
already applied, and where each key was set (`Source`). Every mistake is
reported with file, line and key (`AppConfig.where`). What a strategy requires
of the file is the strategy's to check (`fabfile.engine.strategies.validate`,
given to `load` as its ``rules``): this module knows no strategy.
"""

from __future__ import annotations

import configparser
import dataclasses
import getpass
import re
import shlex
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError
from . import endpoints, hooks, ini, sshconfig
from .endpoints import Endpoint
from .hooks import Hooks
from .ini import DEPLOY, HOST_PREFIX, INSTANCE_PREFIX, Source
from .keys import CLUSTER_KEYS, KEYS, KEYS_BY_NAME, NOTIFY_KEYS, PACE_KEYS
from .pace import Pace
from .sshconfig import Resolved

_HOST = re.compile(r"^(?![-.])[A-Za-z0-9._-]+$|^[0-9A-Fa-f:]+$")  # a name, IPv4 or IPv6


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """Everything needed to deploy to one node."""

    host: str
    user: str
    port: int
    identity_file: str
    ssh_config: str
    known_hosts: str
    accept_unknown_hosts: bool
    connect_timeout: float
    status_url: str
    http_via: str  # ssh or direct (`fabfile.cluster.tunnel`), chosen per node when unset
    ca_bundle: str
    status_timeout: float
    ready_timeout: float
    error_grace: float
    poll_interval: float
    warmup: float
    warmup_urls: tuple[str, ...]
    restart: str
    pid_file: str
    war_path: str
    config_path: str
    jettyrc_path: str
    logback_path: str
    releases_dir: str
    keep_releases: int
    min_free_mb: int
    lb_socket: str
    lb_backend: str
    lb_server: str
    drain_timeout: float
    manager_user: str
    manager_url: str
    manager_password_file: str
    version_heap_mb: int
    command_timeout: float  # any command on the node (the restart: ready_timeout)
    min_transfer_kib: int  # an upload's deadline: command_timeout + its size at this rate
    ssh_keepalive: float  # seconds between keepalives; dead after 3 unacknowledged
    become_user: str  # installs and the restart run as this user, through sudo -n ('': no sudo)
    instance: str = ""  # one of the host's instances ('' when it has one)
    address: str = ""  # what ssh_config resolves ``host`` to (its HostName), or ``host``
    ssh: Resolved | None = None  # how SSH reaches it (`fabfile.app.sshconfig`)
    jumps: tuple[Resolved, ...] = ()  # ProxyJump hops, each resolved the same way

    @property
    def url(self) -> str:
        """The node's /status URL: ``{host}`` is the name in ``hosts``, ``{address}``
        what ssh_config resolves it to."""
        return self.status_url.format(host=self.host, address=self.address or self.host)

    @property
    def label(self) -> str:
        """How tables and messages name it: the host, or ``host/instance``."""
        return f"{self.host}/{self.instance}" if self.instance else self.host


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """The parsed ``.config`` of one app directory."""

    path: Path
    app: str
    nodes: tuple[NodeConfig, ...]
    strategy: str  # a name `fabfile.engine.strategies.validate` checks against its registry
    lb_state_file: str = ""  # haproxy's server-state-file, kept in step (see `Balancer`)
    balancers: tuple[Endpoint, ...] = ()  # lb_socket's entries (`fabfile.app.endpoints`)
    balancer_hosts: dict[str, NodeConfig] = dataclasses.field(default_factory=dict)
    retire: bool = True  # parallel: retire old versions after a deploy
    retire_timeout: float = 120.0
    pace: Pace = dataclasses.field(default_factory=Pace)
    hooks: Hooks = dataclasses.field(default_factory=Hooks)  # [hooks]
    notify_url: str = ""  # where run events go (`fabfile.engine.notifications`)
    notify_format: str = "json"
    notify_secret_file: str = ""
    notify_timeout: float = 5.0
    source: Source = dataclasses.field(default_factory=Source, compare=False, repr=False)

    def where(self, section: str, key: str | None = None) -> str:
        """``PATH:LINE: [section] key``, as every ``.config`` error begins."""
        named = f" {key}" if key else ""
        return f"{self.path}:{self.source.line(section, key)}: [{section}]{named}"

    def origin(self, node: NodeConfig, key: str) -> str:
        """Where ``node``'s ``key`` is set (``PATH:LINE: [section] key``, the section that
        wins as `_node` reads it), or that it is the default."""
        sections = [self.source.section(INSTANCE_PREFIX, node.instance)] if node.instance else []
        sections += [self.source.section(HOST_PREFIX, node.host), DEPLOY]
        found = next((s for s in sections if (s, key) in self.source.keys), None)
        if found is None:
            return f"the default, {KEYS_BY_NAME[key].default}: not set in {self.path}"
        return self.where(found, key)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(node.host for node in self.nodes))

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


# What a higher layer checks of the file once every value is read: what the strategy it
# names requires (`fabfile.engine.strategies.validate`). `ConfigError` to refuse.
Rules = Callable[[AppConfig], None]


def load(path: Path, app: str | None = None, rules: Rules | None = None) -> AppConfig:
    """Read and check ``path``; raise `ConfigError` naming file, line and key.

    ``rules`` run once every value is read, before the checks across nodes, so a
    strategy's own advice comes first (a colour without a port of its own is told so,
    not that two colours share a URL)."""
    app = app or path.resolve().parent.name
    text = ini.read(path)
    parser = ini.parse(path, text)
    source = Source.read(text, parser)
    if not parser.has_section(DEPLOY):
        raise ConfigError(f"{path}:1: no [deploy] section; add one with at least 'hosts = ...'")
    ini.check_sections(path, parser, source)
    hosts = _hosts(path, parser, source)
    ini.check_named_sections(path, parser, source, HOST_PREFIX, hosts)
    instances = _instances(path, parser, source)
    shared = _Shared(path, parser, source)
    nodes = tuple(
        _node(shared, app, host, instance) for host in hosts for instance in instances or ("",)
    )
    config = AppConfig(
        path,
        app,
        nodes,
        strategy=_cluster_value(path, parser, source, "strategy"),
        lb_state_file=_state_file(path, parser, source),
        balancers=endpoints.parse(nodes[0].lb_socket) if nodes else (),
        balancer_hosts=_balancer_hosts(shared, app, nodes),
        retire=_cluster_value(path, parser, source, "retire"),
        retire_timeout=_cluster_value(path, parser, source, "retire_timeout"),
        pace=_pace(path, parser, source),
        hooks=hooks.parse(path, parser, source),
        **_notify(path, parser, source),
        source=source,
    )
    if rules is not None:
        rules(config)
    for key in ("lb_socket", "manager_user", "manager_password_file"):
        _check_one_value(path, source, nodes, key)
    _check_distinct(path, source, nodes)
    _check_state_file(config, parser.get(DEPLOY, "lb_state_file", fallback=""))
    return config


def _pace(path: Path, parser: configparser.ConfigParser, source: Source) -> Pace:
    """Batches, canary and failure threshold; whether the cluster has enough nodes (or
    hosts) for the canary is the strategy's to say (it knows what it counts)."""
    values = {key: _cluster_value(path, parser, source, key) for key in PACE_KEYS}
    return Pace(**values)


def _notify(path: Path, parser: configparser.ConfigParser, source: Source) -> dict[str, Any]:
    """Where run events go; the secret file's path is this machine's (``~`` expanded)."""
    values = {key: _cluster_value(path, parser, source, key) for key in NOTIFY_KEYS}
    secret = values["notify_secret_file"]
    values["notify_secret_file"] = str(Path(secret).expanduser()) if secret else ""
    return values


def _cluster_value(path: Path, parser: configparser.ConfigParser, source: Source, key: str) -> Any:
    """A [deploy]-only key's value (its default when unset)."""
    return _value(
        path, source, DEPLOY, key, parser.get(DEPLOY, key, fallback=KEYS_BY_NAME[key].default)
    )


def _state_file(path: Path, parser: configparser.ConfigParser, source: Source) -> str:
    raw = parser.get(DEPLOY, "lb_state_file", fallback="")
    value: str = _value(path, source, DEPLOY, "lb_state_file", raw)
    return str(Path(value).expanduser()) if value else ""


def _balancer_hosts(
    shared: _Shared, app: str, nodes: tuple[NodeConfig, ...]
) -> dict[str, NodeConfig]:
    """How SSH reaches each balancer host of ``lb_socket`` (``HOST:/path``): as a node's
    host would be, with ``[deploy]``'s settings."""
    found = endpoints.parse(nodes[0].lb_socket) if nodes else ()
    return {e.name: _node(shared, app, e.name, "") for e in found if e.remote}


def _check_state_file(config: AppConfig, raw: str) -> None:
    """haproxy's server-state-file is written where haproxy runs: here, or on its host
    over SSH (a path of that host's: absolute, as ``~`` would be this machine's); a TCP
    socket gives no way to it."""
    remote = [b.name for b in config.balancers if b.remote]
    if raw.strip() and remote and not raw.strip().startswith("/"):
        raise ConfigError(
            f"{config.where(DEPLOY, 'lb_state_file')} = {raw.strip()!r} is written on "
            f"{', '.join(remote)} over SSH: give an absolute path on that host"
        )
    if config.lb_state_file and not config.balancers:
        raise ConfigError(
            f"{config.where(DEPLOY, 'lb_state_file')} needs haproxy's socket: set lb_socket"
        )
    tcp = [b.name for b in config.balancers if b.tcp]
    if config.lb_state_file and tcp:
        raise ConfigError(
            f"{config.where(DEPLOY, 'lb_state_file')} is written on haproxy's host, and "
            f"{', '.join(tcp)} in lb_socket is a TCP socket: name it HOST:/socket/path "
            "(over SSH) or a path on this machine"
        )


def _instances(path: Path, parser: configparser.ConfigParser, source: Source) -> tuple[str, ...]:
    """The instances every host runs; each ``[instance:NAME]`` must be one of them."""
    raw = parser.get(DEPLOY, "instances", fallback="")
    names: tuple[str, ...] = _value(path, source, DEPLOY, "instances", raw)
    ini.check_named_sections(path, parser, source, INSTANCE_PREFIX, list(names))
    return names


def _check_distinct(path: Path, source: Source, nodes: tuple[NodeConfig, ...]) -> None:
    """Two instances on one URL or one WAR, or two nodes behind one haproxy server,
    would be one."""
    urls: dict[str, NodeConfig] = {}
    servers: dict[str, NodeConfig] = {}
    wars: dict[str, NodeConfig] = {}
    for node in nodes:
        _unique(path, source, urls, node.url, node, "status_url")
        _unique(path, source, wars, f"{node.war_path} on {node.host}", node, "war_path")
        if node.lb_socket:
            server = f"{node.lb_backend}/{node.lb_server}"
            _unique(path, source, servers, server, node, "lb_server")


def _unique(
    path: Path, source: Source, seen: dict[str, NodeConfig], value: str, node: NodeConfig, key: str
) -> None:
    other = seen.setdefault(value, node)
    if other is not node:
        candidates = [f"{INSTANCE_PREFIX}{node.instance}", f"{HOST_PREFIX}{node.host}"]
        section = next((c for c in candidates if (c, key) in source.keys), DEPLOY)
        raise ConfigError(
            f"{path}:{source.line(section, key)}: [{section}] {key}: {other.label} and "
            f"{node.label} both use {value}; give each its own"
        )


def _hosts(path: Path, parser: configparser.ConfigParser, source: Source) -> list[str]:
    where = f"{path}:{source.line(DEPLOY, 'hosts')}: [deploy] hosts"
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


_NODE_KEYS = tuple(key.name for key in KEYS if key.name not in CLUSTER_KEYS)


class _Shared:
    """The file as every node reads it: ``[deploy]``'s value of each node key, parsed on
    the first node that uses it and then shared, so a thousand hosts cost one parse of
    each shared key (values are immutable); a ``[host:NAME]`` or ``[instance:NAME]``
    value is parsed for its own node."""

    def __init__(self, path: Path, parser: configparser.ConfigParser, source: Source) -> None:
        self.path, self.parser, self.source = path, parser, source
        self._deploy: dict[str, Any] = {}
        self._ssh_config: dict[str, bool] = {}  # per ssh_config setting: is there a file
        self._user = ""

    def resolve(self, host: str, setting: str, where: str, user: str, port: int) -> Resolved:
        """`sshconfig.resolve`; without an ssh_config file, the file looked for and the
        user running deploy looked up once for every host."""
        if setting not in self._ssh_config:
            self._ssh_config[setting] = sshconfig.path_of(setting) is not None
        if self._ssh_config[setting]:
            return sshconfig.resolve(host, setting, where, user, port)
        self._user = self._user or getpass.getuser()
        return sshconfig.plain(host, user or self._user, port)

    def own(self, sections: Iterable[str]) -> list[tuple[str, frozenset[str]]]:
        """The node's own sections that the file has, each with the keys it sets."""
        return [
            (s, frozenset(self.parser.options(s))) for s in sections if self.parser.has_section(s)
        ]

    def value(self, section: str, name: str) -> Any:
        """``name``'s value as set in ``section`` (its default when unset there)."""
        if section == DEPLOY and name in self._deploy:
            return self._deploy[name]
        raw = self.parser.get(section, name, fallback=KEYS_BY_NAME[name].default)
        value = _value(self.path, self.source, section, name, raw)
        if section == DEPLOY:
            self._deploy[name] = value
        return value


def _node(shared: _Shared, app: str, host: str, instance: str) -> NodeConfig:
    """One instance of one host: [instance:NAME] over [host:NAME] over [deploy]."""
    path, source = shared.path, shared.source
    sections = [source.section(INSTANCE_PREFIX, instance)] if instance else []
    sections += [source.section(HOST_PREFIX, host), DEPLOY]
    own = shared.own(sections[:-1])
    values: dict[str, Any] = {"host": host, "instance": instance}
    for name in _NODE_KEYS:
        section = next((s for s, keys in own if name in keys), DEPLOY)
        values[name] = shared.value(section, name)
    _resolve_ssh(values, shared, sections, host)
    _fill_placeholders(values, host, app, instance)
    if values["lb_socket"] and not values["lb_backend"]:
        raise ConfigError(
            f"{path}:{source.line(DEPLOY, 'lb_socket')}: [deploy] lb_socket is set but "
            "lb_backend is not; name the haproxy backend that holds the nodes"
        )
    values["lb_server"] = values["lb_server"] or (f"{host}-{instance}" if instance else host)
    node = NodeConfig(**values)
    try:
        urllib.parse.urlsplit(node.url).port  # noqa: B018 - {instance} filled in may break it
    except ValueError as error:
        raise ConfigError(
            f"{path}:{source.line(DEPLOY, 'status_url')}: status_url for {node.label} is "
            f"{node.url}, not a valid URL ({error})"
        ) from None
    return node


def _resolve_ssh(values: dict[str, Any], shared: _Shared, sections: list[str], host: str) -> None:
    """User, port, address and jump hosts as ssh_config gives them, ``.config`` first."""
    path, source = shared.path, shared.source
    parser_section = next((s for s in sections if (s, "ssh_config") in source.keys), DEPLOY)
    where = f"{path}:{source.line(parser_section, 'ssh_config')}: [{parser_section}] ssh_config"
    setting = values["ssh_config"]
    ssh = shared.resolve(host, setting, where, values["user"], values["port"])
    values.update(user=ssh.user, port=ssh.port, address=ssh.address, ssh=ssh)
    values["jumps"] = tuple(sshconfig.hop(spec, setting, where) for spec in ssh.jumps)
    # behind a jump host, the node's HTTP port is rarely reachable from here either
    values["http_via"] = values["http_via"] or ("ssh" if values["jumps"] else "direct")
    values["ca_bundle"] = str(Path(values["ca_bundle"]).expanduser()) if values["ca_bundle"] else ""


_TEMPLATES = (
    "war_path",
    "config_path",
    "jettyrc_path",
    "logback_path",
    "releases_dir",
    "pid_file",
    "manager_url",
)


def _fill_placeholders(values: dict[str, Any], host: str, app: str, instance: str) -> None:
    """``{host}``, ``{app}`` and ``{instance}`` in paths and in the restart command.

    A host name is letters, digits and ``._-`` and an instance name letters,
    digits, ``-`` and ``_`` (both checked), so each is one shell word as it is;
    the app name is quoted in the restart command.
    """
    for name in _TEMPLATES:
        filled = values[name].replace("{host}", host).replace("{app}", app)
        values[name] = filled.replace("{instance}", instance)
    restart = values["restart"].replace("{host}", host).replace("{instance}", instance)
    values["restart"] = restart.replace("{app}", shlex.quote(app))
    values["status_url"] = values["status_url"].replace("{instance}", instance)
    server = values["lb_server"].replace("{host}", host)
    values["lb_server"] = server.replace("{instance}", instance)


def _check_one_value(path: Path, source: Source, nodes: tuple[NodeConfig, ...], key: str) -> None:
    """One value for every node: one haproxy to drain through (``lb_socket``), one
    manager user and password (the secret is loaded once, for every host)."""
    odd = next((n for n in nodes if getattr(n, key) != getattr(nodes[0], key)), None)
    if odd is not None:
        section = f"{HOST_PREFIX}{odd.host}"
        raise ConfigError(
            f"{path}:{source.line(section, key)}: [{section}] {key} differs from "
            f"{nodes[0].host}'s; set {key} once, in [deploy]"
        )


def _value(path: Path, source: Source, section: str, name: str, raw: str | None) -> Any:
    where = f"{path}:{source.line(section, name)}: [{section}] {name}"
    if raw is None:
        raise ConfigError(f"{where}: missing; it has no default")
    try:
        return KEYS_BY_NAME[name].parse(raw)
    except ValueError as error:
        reason = str(error)
        shown = raw.strip()[:60]
        raise ConfigError(f"{where} = {shown!r}: {reason}") from None
