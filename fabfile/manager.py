"""The Tomcat manager's text API (``/manager/text``), as the deploy tool uses it.

Blue/green asks it one thing: how many sessions the app holds on an instance,
to check before a switch that the idle colour carries the live one's sessions.
The user needs the ``manager-script`` role; the password comes only from
`fabfile.secrets` (``$DEPLOY_SECRET_MANAGER_PASSWORD`` or an owner-only file),
is sent only to that instance's manager URL, and is never part of a message.
"""

from __future__ import annotations

import base64
import http.client
import urllib.parse
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from . import secrets
from .config import NodeConfig
from .errors import NodeError

SECRET = "manager_password"
_MAX_BODY = 1 << 20
_REFUSALS = {
    401: "refused user {user!r} (HTTP 401): check manager_user and the password ({source})",
    403: "denies user {user!r} the text API (HTTP 403): give it the manager-script role "
    "(and allow this address in the manager's RemoteCIDRValve)",
    404: "is not there (HTTP 404): install Tomcat's manager app (Debian: tomcat10-admin) "
    "or fix manager_url",
}


def url(node: NodeConfig) -> str:
    """The node's manager text API: ``manager_url``, or status_url's origin + /manager/text."""
    if node.manager_url:
        return node.manager_url.rstrip("/")
    parts = urllib.parse.urlsplit(node.url)
    return f"{parts.scheme}://{parts.netloc}/manager/text"


def context_path(node: NodeConfig) -> str:
    """The app's context path, as Tomcat derives it from the WAR's file name:
    ``ROOT.war`` is ``/``, ``shop.war`` ``/shop``, ``a#b.war`` ``/a/b``."""
    name = PurePosixPath(node.war_path).stem.partition("##")[0]
    return "/" if name == "ROOT" else "/" + name.replace("#", "/")


class Manager:
    """Counts the app's sessions on each instance, through its manager."""

    def __init__(self, password: secrets.Secret) -> None:
        self.password = password

    @classmethod
    def for_nodes(cls, nodes: Sequence[NodeConfig]) -> Manager | None:
        """None when ``.config`` names no manager user; `ConfigError` without a password."""
        if not nodes or not nodes[0].manager_user:
            return None
        file = nodes[0].manager_password_file
        return cls(secrets.load(SECRET, Path(file).expanduser() if file else None))

    def count(self, node: NodeConfig) -> int:
        """The app's active sessions on ``node`` (``/list``: ``/path:running:N:name``)."""
        path = context_path(node)
        for line in self._get(node, "/list").splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == path and fields[2].isdigit():
                return int(fields[2])
        raise NodeError(f"{node.label}: the Tomcat manager at {url(node)} lists no app at {path}")

    def _get(self, node: NodeConfig, command: str) -> str:
        base = url(node)
        parts = urllib.parse.urlsplit(base + command)
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        credentials = f"{node.manager_user}:{self.password.reveal()}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        connection = kind(parts.hostname or "", parts.port, timeout=node.connect_timeout)
        try:
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            body = response.read(_MAX_BODY).decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise NodeError(
                f"{node.label}: the Tomcat manager at {base} does not answer ({reason})"
            ) from None
        finally:
            connection.close()
        if response.status in _REFUSALS:
            why = _REFUSALS[response.status].format(
                user=node.manager_user, source=self.password.source
            )
            raise NodeError(f"{node.label}: the Tomcat manager at {base} {why}")
        if response.status != 200 or not body.startswith("OK"):
            first = (
                body.strip().splitlines()[0][:200] if body.strip() else f"HTTP {response.status}"
            )
            raise NodeError(f"{node.label}: the Tomcat manager at {base} said: {first}")
        return body
