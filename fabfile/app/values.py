"""How each kind of value in ``.config`` is read: seconds, ports, names, URLs, templates.

Each parser takes the text as written and returns the value or raises `ValueError`
with what was expected; `fabfile.app.config` adds file, line and key.
"""

from __future__ import annotations

import re
import string
import urllib.parse

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


_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$")


def parse_user(text: str) -> str:
    """A Unix user name, or empty: it goes to ``sudo -u`` on the node."""
    value = text.strip()
    if value and not _USER.match(value):
        raise ValueError(
            "expected a user name (letters, digits, '.', '_', '-'), e.g. root or jetty"
        )
    return value


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


def parse_http_via(text: str) -> str:
    """``ssh``, ``direct``, or empty (chosen per node: ssh behind a jump host)."""
    value = text.strip().lower()
    if value not in ("", "ssh", "direct"):
        raise ValueError("expected ssh or direct (empty: ssh behind a jump host, else direct)")
    return value


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


def parse_notify_url(text: str) -> str:
    """Empty (no notifications), or an http(s) URL that events are POSTed to."""
    value = text.strip()
    if not value:
        return ""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018
    except ValueError as error:
        raise ValueError(f"not a valid URL ({error})") from None
    if not parts.hostname:
        raise ValueError("names no host")
    if parts.username or parts.password:
        raise ValueError("a password in the URL would be shown and recorded; sign with a secret")
    return value


def parse_notify_format(text: str) -> str:
    """``json`` (the event) or ``slack`` (``{"text": ...}``, a Slack incoming webhook)."""
    word = text.strip().lower()
    if word not in ("json", "slack"):
        raise ValueError("expected json or slack")
    return word


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
    """haproxy's runtime APIs, comma-separated (empty: no balancer), each one of
    ``/path`` (a Unix socket on this machine), ``HOST:/path`` (a Unix socket on that
    host, over SSH) or ``HOST:PORT`` (a TCP stats socket, unauthenticated)."""
    items = [item.strip() for item in text.split(",")]
    if items == [""]:
        return ""
    names = []
    for item in items:
        if not item:
            raise ValueError("an empty entry between commas")
        names.append(_lb_name(item))
    if len(set(names)) != len(names):
        raise ValueError("a balancer is listed twice")
    return ", ".join(items)


def _lb_name(item: str) -> str:
    """What ``--lb`` and messages call one balancer: its host for ``HOST:/path``."""
    if item.startswith("/"):
        return item
    host, colon, rest = item.partition(":")
    if colon and rest.startswith("/") and re.match(r"^[A-Za-z0-9._-]+$", host):
        return host
    if colon and rest.isdigit() and host:
        return item
    raise ValueError(
        f"{item!r}: expected a Unix socket path, HOST:/socket/path (over SSH) or HOST:PORT"
    )


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


def parse_rate(text: str) -> int:
    """A rate in KiB/s, a whole number > 0: a transfer's deadline divides by it."""
    value = parse_count(text)
    if value == 0:
        raise ValueError("expected a whole number of KiB/s > 0")
    return value
