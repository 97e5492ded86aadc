"""The haproxy runtime APIs ``lb_socket`` names, and where each one is.

One entry per balancer, comma-separated: several balancers in front of the same
nodes (an HA pair) are kept in step (`fabfile.cluster.balancers`). An entry is

- ``/path``: haproxy's Unix socket on this machine (the coordinator runs haproxy);
- ``HOST:/path``: haproxy's Unix socket on HOST, reached over SSH as the nodes are
  (ssh_config alias, jump hosts, ``user``, ``identity_file``, ``known_hosts``,
  ``become_user`` from ``[deploy]``): what a fleet with its own balancer hosts uses;
- ``HOST:PORT``: a TCP stats socket. haproxy asks nothing of a client there: whoever
  reaches the port can take every server out of rotation. Kept for those who have it,
  warned about in the plan.
"""

from __future__ import annotations

import dataclasses

PLACEHOLDER = "{balancer}"  # in lb_state_file: the balancer's name


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One balancer's runtime API: its name, the socket, and the host it is on."""

    name: str  # what --lb and messages call it: HOST for HOST:/path, else the entry
    socket: str  # a Unix socket path, or HOST:PORT
    remote: bool = False  # on host ``name``, over SSH (`AppConfig.balancer_hosts`)

    @property
    def tcp(self) -> bool:
        return not self.socket.startswith("/")

    @property
    def describe(self) -> str:
        """How the plan names it: where it is and how it is reached."""
        if self.remote:
            return f"{self.name} ({self.socket} over SSH)"
        if self.tcp:
            return f"{self.name} (TCP, unauthenticated)"
        return f"{self.name} (on this machine)"

    def state_file(self, template: str) -> str:
        """``lb_state_file`` for this balancer (on its own host)."""
        return template.replace(PLACEHOLDER, self.name.replace("/", "_"))


def parse(text: str) -> tuple[Endpoint, ...]:
    """The entries of a checked ``lb_socket`` (`fabfile.app.values.parse_lb_socket`)."""
    endpoints = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, colon, rest = item.partition(":")
        if item.startswith("/"):
            endpoints.append(Endpoint(item, item))
        elif colon and rest.startswith("/"):
            endpoints.append(Endpoint(name, rest, remote=True))
        else:
            endpoints.append(Endpoint(item, item))
    return tuple(endpoints)


def choose(endpoints: tuple[Endpoint, ...], names: tuple[str, ...] | None) -> tuple[Endpoint, ...]:
    """The balancers ``--lb`` names (all when None); ValueError naming an unknown one."""
    if names is None:
        return endpoints
    known = [e.name for e in endpoints]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(
            f"--lb names {', '.join(unknown) or 'no balancer'}; lb_socket has: "
            f"{', '.join(known) or 'none'}"
        )
    return tuple(e for e in endpoints if e.name in names)
