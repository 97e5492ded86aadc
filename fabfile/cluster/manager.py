"""The Tomcat manager's text API (``/manager/text``), as the deploy tool uses it.

Blue/green asks it how many sessions the app holds on an instance, to check
before a switch that the idle colour carries the live one's sessions. Parallel
deployment lists the app's versions with their sessions, deploys a version
from a WAR already on the node (never uploaded over HTTP), undeploys one, and
reads the JVM's heap. The user needs the ``manager-script`` role; the password comes only from
`fabfile.app.credentials` (``$DEPLOY_SECRET_MANAGER_PASSWORD`` or an owner-only file),
is sent only to that instance's manager URL, and is never part of a message.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..app import credentials
from ..app.config import NodeConfig
from ..app.tag import Tag
from ..errors import NodeError, NotReady
from . import http, tunnel

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


@dataclasses.dataclass(frozen=True)
class Deployed:
    """One version of the app as the manager lists it."""

    tag: str  # after ``##`` ('' for a WAR deployed without a version)
    state: str  # running, stopped
    sessions: int

    @property
    def parsed(self) -> Tag | None:
        return Tag.parse(self.tag)

    @property
    def label(self) -> str:
        """The Maven version beside the tag, as every table and message shows it."""
        parsed = self.parsed
        return str(parsed) if parsed else f"##{self.tag}" if self.tag else "(no version tag)"


@dataclasses.dataclass(frozen=True)
class Heap:
    """The JVM's heap, as the manager's status page reports it (bytes)."""

    used: int
    max: int

    @property
    def free(self) -> int:
        return self.max - self.used


class Manager:
    """Talks to each instance's manager, with the one user and password of the app."""

    def __init__(self, password: credentials.Secret) -> None:
        self.password = password

    @classmethod
    def for_nodes(cls, nodes: Sequence[NodeConfig]) -> Manager | None:
        """None when ``.config`` names no manager user; `ConfigError` without a password."""
        if not nodes or not nodes[0].manager_user:
            return None
        file = nodes[0].manager_password_file
        return cls(credentials.load(SECRET, Path(file).expanduser() if file else None))

    def count(self, node: NodeConfig) -> int:
        """The app's active sessions on ``node`` (``/list``: ``/path:running:N:name``)."""
        path = context_path(node)
        for line in self._get(node, "/list").splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == path and fields[2].isdigit():
                return int(fields[2])
        raise NodeError(f"{node.label}: the Tomcat manager at {url(node)} lists no app at {path}")

    def versions(self, node: NodeConfig) -> list[Deployed]:
        """Every version of the app on ``node``, oldest tag first (Tomcat's order)."""
        path, found = context_path(node), []
        for line in self._get(node, "/list").splitlines():
            fields = line.split(":", 3)
            if len(fields) == 4 and fields[0] == path and fields[2].isdigit():
                found.append(Deployed(fields[3].partition("##")[2], fields[1], int(fields[2])))
        return sorted(found, key=lambda deployed: deployed.tag)

    def deploy(self, node: NodeConfig, tag: str, war: str, context: str = "") -> None:
        """Deploy the WAR at ``war`` (a path on the node, ending in .war) as version ``tag``;
        ``context``: a context file on the node to deploy with it. `NodeError` quoting the
        manager when it refuses, or the version fails to start."""
        query = {"path": context_path(node), "version": tag, "war": "file:" + war}
        if context:
            query["config"] = "file:" + context
        self._get(node, "/deploy?" + urllib.parse.urlencode(query), "deploying " + tag, slow=True)

    def undeploy(self, node: NodeConfig, tag: str) -> None:
        """Remove version ``tag`` (its sessions end with it)."""
        query = {"path": context_path(node), **({"version": tag} if tag else {})}
        self._get(node, "/undeploy?" + urllib.parse.urlencode(query), "undeploying " + tag)

    def heap(self, node: NodeConfig) -> Heap:
        """The JVM's heap in use and its maximum (the manager's status page, as XML)."""
        status = url(node).rsplit("/", 1)[0] + "/status?XML=true"
        body = self._get(node, "", "reading the heap", whole=status)
        match = re.search(r"<memory free='(\d+)' total='(\d+)' max='(\d+)'", body)
        if match is None:
            raise NodeError(f"{node.label}: the Tomcat manager's status page shows no heap figures")
        free, total, most = (int(group) for group in match.groups())
        return Heap(used=total - free, max=most)

    def _get(
        self, node: NodeConfig, command: str, what: str = "", whole: str = "", slow: bool = False
    ) -> str:
        """GET ``command`` of the text API (or the URL ``whole``); the body when it says OK.
        ``slow``: a deploy, which starts the version before it answers (ready_timeout)."""
        base = url(node)
        credentials = f"{node.manager_user}:{self.password.reveal()}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        timeout = node.ready_timeout if slow else node.connect_timeout
        try:
            response = http.request(
                "GET",
                whole or base + command,
                headers=headers,
                connect_timeout=timeout,
                read_timeout=timeout,
                max_body=_MAX_BODY,
                way=tunnel.way(node),
            )
        except http.HttpError as error:
            reason = getattr(error.cause, "strerror", None) or type(error.cause).__name__
            if error.failure in (http.Failure.UNTRUSTED, http.Failure.TUNNEL):
                reason = error.reason  # what to do about it, not an exception's name
            if slow and error.failure == http.Failure.TIMEOUT:  # the rollout says what it needed
                raise NotReady(
                    f"{node.label}: the Tomcat manager at {base} did not answer {what} within "
                    f"{timeout:g} s (ready_timeout): the version starts before it answers"
                ) from None
            raise NodeError(
                f"{node.label}: the Tomcat manager at {base} does not answer ({reason})"
            ) from None
        body = response.text
        if response.status in _REFUSALS:
            why = _REFUSALS[response.status].format(
                user=node.manager_user, source=self.password.source
            )
            raise NodeError(f"{node.label}: the Tomcat manager at {base} {why}")
        if response.status != 200 or not (whole or body.startswith("OK")):
            first = (
                body.strip().splitlines()[0][:300] if body.strip() else f"HTTP {response.status}"
            )
            doing = f" {what}" if what else ""
            raise NodeError(f"{node.label}: the Tomcat manager at {base} said{doing}: {first}")
        return body


class Sessions(Protocol):
    """Counting a node's active sessions, as `Manager.count` does: what blue/green asks
    before a switch, to check that the idle colour carries the live one's users."""

    def count(self, node: NodeConfig) -> int: ...
