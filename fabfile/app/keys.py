"""The keys a ``.config`` may hold: their parsers, defaults and documentation.

One table serves the parser (`fabfile.app.config`), the README's key reference and
the test that keeps the two in step, so a key cannot exist in one and not the
other.
"""

from __future__ import annotations

import dataclasses
import re
import string
import urllib.parse
from collections.abc import Callable
from typing import Any

from . import pace

Parser = Callable[[str], Any]

_MAX_SECONDS = 86400
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


def parse_bool(text: str) -> bool:
    """Accept the spellings configparser accepts, nothing else."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expected yes or no")


def parse_seconds(text: str) -> float:
    """A non-negative number of seconds; ``inf`` and ``nan`` are not durations."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number of seconds")
    if value < 0:
        raise ValueError("expected a number of seconds >= 0")
    if value > _MAX_SECONDS:
        raise ValueError(f"expected at most {_MAX_SECONDS} seconds (a day)")
    return value


def parse_positive_seconds(text: str) -> float:
    """A timeout: zero would fail every node at once, so it is refused."""
    value = parse_seconds(text)
    if value == 0:
        raise ValueError("expected a number of seconds > 0")
    return value


def parse_count(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < 0:
        raise ValueError("expected a whole number >= 0")
    return value


def parse_port(text: str) -> int:
    """A TCP port."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("expected a port number") from None
    if not 0 < value < 65536:
        raise ValueError("expected a port from 1 to 65535")
    return value


def parse_optional_port(text: str) -> int:
    """A TCP port, or empty (0): ssh_config's Port, else 22."""
    return parse_port(text) if text.strip() else 0


def parse_text(text: str) -> str:
    """A non-empty string."""
    value = text.strip()
    if not value:
        raise ValueError("expected a value")
    return value


def parse_optional(text: str) -> str:
    """A string that may be empty (empty means: not set)."""
    return text.strip()


def parse_status_url(text: str) -> str:
    """The URL template must name ``{host}``, or every node would probe one URL."""
    value = parse_text(text)
    if "{host}" not in value and "{address}" not in value:
        raise ValueError("must contain {host} or {address}, e.g. http://{host}:8080/status")
    value_for_check = value.replace("{instance}", "1")  # names may be digits: :808{instance}
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    try:
        fields = [
            field
            for _, field, _, _ in string.Formatter().parse(value_for_check)
            if field is not None
        ]
    except ValueError as error:
        raise ValueError(f"unbalanced braces ({error})") from None
    if any(field not in ("host", "address") for field in fields):
        raise ValueError("only {host}, {address} and {instance} may stand in braces")
    try:
        check = value_for_check.format(host="node.example", address="node.example")
        urllib.parse.urlsplit(check).port  # noqa: B018
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    return value


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("host", "app", "instance")


def parse_manager_url(text: str) -> str:
    """Empty (derived from status_url), or an http(s) URL that may name {host} and
    {instance}: the manager password is sent there, so no guessing at what it means."""
    value = text.strip()
    if not value:
        return ""
    parse_template(value)
    check = value.replace("{host}", "node.example").replace("{instance}", "1")
    if not check.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    try:
        urllib.parse.urlsplit(check).port  # noqa: B018
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    return value


def parse_template(text: str) -> str:
    """A path or command that may name ``{host}`` and ``{app}``, filled in per node."""
    value = parse_text(text)
    unknown = [name for name in _PLACEHOLDER.findall(value) if name not in PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}; only {{host}}, {{app}} and {{instance}} exist"
        )
    return value


def parse_optional_template(text: str) -> str:
    """Like `parse_template`, but may be empty (not set)."""
    return parse_template(text) if text.strip() else ""


_LB_NAME = re.compile(r"^[A-Za-z0-9._:-]*$")


def parse_lb_name(text: str) -> str:
    """A haproxy backend or server name: ';' would start another runtime command.

    It may name ``{host}`` and ``{instance}`` (safe names, filled in per node)."""
    value = text.strip()
    if not _LB_NAME.match(value.replace("{host}", "h").replace("{instance}", "i")):
        raise ValueError("expected letters, digits and ._:- only")
    return value


def parse_lb_socket(text: str) -> str:
    """The haproxy runtime API: a Unix socket path or HOST:PORT (empty: no balancer)."""
    value = text.strip()
    if value and "/" not in value and not re.match(r"^.+:\d+$", value):
        raise ValueError("expected a Unix socket path or HOST:PORT")
    return value


_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def parse_names(text: str) -> tuple[str, ...]:
    """Instance names, comma-separated: lower-case letters, digits, ``-`` and ``_``."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a name (a-z, 0-9, - and _)")
    if len(set(names)) != len(names):
        raise ValueError("a name is listed twice")
    return names


def parse_paths(text: str) -> tuple[str, ...]:
    """URL paths on the node, comma-separated, each starting with ``/``."""
    paths = tuple(path.strip() for path in text.split(",") if path.strip())
    for path in paths:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise ValueError(f"{path!r} is not a path on the node (it starts with /, no spaces)")
    return paths


def parse_strategy(text: str) -> str:
    """A strategy's name; which names exist is the registry's to say
    (`fabfile.engine.strategies.validate`, with file and line as here)."""
    return text.strip().lower()


def parse_retire(text: str) -> bool:
    """``auto`` (retire after every deploy) is True, ``manual`` False."""
    word = text.strip().lower()
    if word not in ("auto", "manual"):
        raise ValueError("expected auto or manual")
    return word == "auto"


@dataclasses.dataclass(frozen=True)
class Key:
    """One ``.config`` key: how to read it, its default and what it means."""

    name: str
    parse: Parser
    default: str | None  # None: required
    doc: str


KEYS: tuple[Key, ...] = (
    Key("hosts", parse_text, None, "Nodes, comma-separated: addresses or names that resolve."),
    Key(
        "strategy",
        parse_strategy,
        "rolling",
        "How a release reaches the nodes: rolling; blue-green (two instances per host, "
        "switched in haproxy); parallel (Tomcat versions side by side, no restart).",
    ),
    Key(
        "instances",
        parse_names,
        "",
        "Instances on every host, e.g. blue, green (see [instance:NAME]); empty: one.",
    ),
    Key(
        "user",
        parse_optional,
        "",
        "SSH user; empty: ssh_config's User, else the user running deploy.",
    ),
    Key("port", parse_optional_port, "", "SSH port; empty: ssh_config's Port, else 22."),
    Key(
        "identity_file",
        parse_optional,
        "",
        "SSH private key, tried before ssh_config's IdentityFile; empty: those, the agent "
        "and ~/.ssh keys.",
    ),
    Key(
        "ssh_config",
        parse_optional,
        "",
        "The ssh_config file read for Host aliases, HostName, User, Port, IdentityFile "
        "and ProxyJump; empty: ~/.ssh/config when it exists.",
    ),
    Key("known_hosts", parse_text, "~/.ssh/known_hosts", "Known-hosts file checked on connect."),
    Key("accept_unknown_hosts", parse_bool, "no", "yes: trust and record an unknown host key."),
    Key("connect_timeout", parse_positive_seconds, "5", "Seconds to connect (SSH and HTTP)."),
    Key("status_url", parse_status_url, "http://{host}:8080/status", "The /status URL template."),
    Key("status_timeout", parse_positive_seconds, "2", "Seconds to wait for a /status answer."),
    Key("ready_timeout", parse_positive_seconds, "60", "Seconds a node may take to be ready."),
    Key("poll_interval", parse_positive_seconds, "0.05", "Seconds between two /status polls."),
    Key(
        "error_grace",
        parse_positive_seconds,
        "5",
        "Seconds of steady 5xx from /status after which a node has failed.",
    ),
    Key(
        "warmup",
        parse_seconds,
        "5",
        "Seconds a verified node warms up before the next; with lb_socket its haproxy "
        "weight ramps up over them.",
    ),
    Key(
        "warmup_urls",
        parse_paths,
        "",
        "Paths fetched from a verified node before it goes back in rotation, e.g. "
        "/, /search?q=java; empty: none.",
    ),
    Key(
        "batch",
        pace.parse_batch,
        "1",
        "Nodes changed at once: N, or P% of the nodes (rounded down, at least 1).",
    ),
    Key(
        "canary",
        parse_count,
        "0",
        "Nodes that go first, alone; the rest waits for their verdict (0: no canary).",
    ),
    Key(
        "canary_wait",
        parse_seconds,
        "60",
        "Seconds the canaries are watched (/status, haproxy's error counters) before the "
        "rest goes.",
    ),
    Key(
        "canary_min_requests",
        parse_count,
        "10",
        "Requests haproxy must send the canaries during canary_wait for a verdict; fewer "
        "is Inconclusive.",
    ),
    Key(
        "max_failures",
        pace.parse_failures,
        "0",
        "Failed nodes a run goes on past (N or P%, rounded down), over the whole run; "
        "0: stop at the first.",
    ),
    Key("restart", parse_template, "/usr/share/jetty9/bin/jetty.sh restart", "Restart command."),
    Key(
        "pid_file",
        parse_optional_template,
        "/var/run/jetty/jetty.pid",
        "The container's PID file on the node (names a stray JVM).",
    ),
    Key("war_path", parse_template, "/var/lib/jetty9/webapps/root.war", "Where the WAR goes."),
    Key(
        "config_path",
        parse_template,
        "/var/lib/jetty9/resources/config.properties",
        "Where config.properties goes.",
    ),
    Key("jettyrc_path", parse_template, "~/.jettyrc", "Where .jettyrc goes."),
    Key(
        "logback_path",
        parse_optional_template,
        "",
        "Where logback.xml goes (needed when the app directory has one).",
    ),
    Key("releases_dir", parse_template, "~/releases/{app}", "Where a node keeps its releases."),
    Key("keep_releases", parse_count, "5", "Releases kept on each node (at least 2 are)."),
    Key("min_free_mb", parse_count, "16", "MiB that must stay free on a node after staging."),
    Key("lb_socket", parse_lb_socket, "", "haproxy stats socket (admin level); empty: no LB."),
    Key("lb_backend", parse_lb_name, "", "haproxy backend that holds the nodes."),
    Key("lb_server", parse_lb_name, "", "This node's server name in the backend."),
    Key("drain_timeout", parse_seconds, "30", "Seconds to wait for a drained node's sessions."),
    Key(
        "lb_state_file",
        parse_optional,
        "",
        "haproxy's server-state-file: written after every state change, so a reload keeps "
        "them (needs a socket path in lb_socket); empty: not kept.",
    ),
    Key(
        "manager_user",
        parse_optional,
        "",
        "Tomcat manager user (manager-script role), one for every host; empty: sessions "
        "are not counted.",
    ),
    Key(
        "manager_url",
        parse_manager_url,
        "",
        "The manager's text API; empty: status_url's scheme, host and port + /manager/text.",
    ),
    Key(
        "manager_password_file",
        parse_optional,
        "",
        "A file only you can read holding the manager password "
        "(or set $DEPLOY_SECRET_MANAGER_PASSWORD).",
    ),
    Key(
        "retire",
        parse_retire,
        "auto",
        "parallel: auto undeploys old versions after a deploy once their sessions end; "
        "manual: only `deploy retire` does.",
    ),
    Key(
        "retire_timeout",
        parse_seconds,
        "120",
        "parallel: seconds retire waits for old versions' sessions to end.",
    ),
    Key(
        "version_heap_mb",
        parse_count,
        "0",
        "parallel: heap MiB one more version needs; 0: heap in use / versions running.",
    ),
)

KEYS_BY_NAME = {key.name: key for key in KEYS}
CLUSTER_KEYS = (
    "hosts",
    "strategy",
    "instances",
    "lb_state_file",
    "retire",
    "retire_timeout",
    "batch",
    "canary",
    "canary_wait",
    "canary_min_requests",
    "max_failures",
)  # one value for the cluster: [deploy] only
# What differs between the instances of one host: set in [instance:NAME].
INSTANCE_KEYS = (
    "status_url",
    "restart",
    "pid_file",
    "war_path",
    "config_path",
    "jettyrc_path",
    "logback_path",
    "lb_server",
    "manager_url",
)
