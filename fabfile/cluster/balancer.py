"""Taking a node out of haproxy's rotation and back, through its runtime API.

haproxy's stats socket (``stats socket PATH level admin``) takes one command
per connection. A node is set to ``drain`` (no new requests), we wait for its
current sessions to reach 0, and after verification it is set ``ready``; a
node that failed verification is left in ``maint``.

haproxy forgets runtime states on a reload. With ``lb_state_file`` set, every
state change is followed by writing haproxy's own ``show servers state`` to
the file its ``server-state-file`` names, so a reload (with
``load-server-state-from-file global``) starts where the runtime was: a
blue/green switch survives it.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import re
import time
from typing import Protocol

from ..app.config import NodeConfig
from ..errors import NodeError
from . import inflight
from .address import normal
from .mismatch import mismatch
from .runtimeapi import Channel, Local

UP_TIMEOUT = 10.0  # seconds for a server set ready (health up) to be reported UP


class State(enum.StrEnum):
    """A server's state as haproxy reports it (``show stat``'s status, in one word)."""

    UP = "UP"
    DRAIN = "DRAIN"  # in rotation for its current sessions only
    MAINT = "MAINT"  # out of rotation (by the tool, an operator, or a blue/green idle colour)
    DOWN = "DOWN"  # failing haproxy's health checks
    NOLB = "NOLB"
    MISSING = "MISSING"  # no such server in the backend
    UNREACHABLE = "UNREACHABLE"  # the runtime API did not answer (shown, never read)
    OTHER = "?"  # a word this version does not know

    @property
    def serving(self) -> bool:
        """Takes traffic: in rotation and answering its health checks."""
        return self in (State.UP, State.DRAIN)

    @classmethod
    def of(cls, status: str | None) -> State:
        """haproxy's status column: 'UP 1/3' is UP, 'no check' UP, 'MAINT(via)' MAINT."""
        if status is None:
            return cls.MISSING
        if status == "no check":
            return cls.UP
        word = status.split()[0].split("(")[0] if status.strip() else ""
        return cls(word) if word in cls._value2member_map_ else cls.OTHER


class Admin(enum.StrEnum):
    """What the tool sets a server to (``set server B/S state ...``)."""

    READY = "ready"
    DRAIN = "drain"
    MAINT = "maint"


RTIME_SAMPLES = 1024  # the requests haproxy's rtime is the mean of (TIME_STATS_SAMPLES)


@dataclasses.dataclass(frozen=True)
class Counters:
    """One server's cumulative counters in ``show stat``: compare two readings."""

    requests: int = 0  # the server's HTTP answers (hrsp_*) + eresp + econ (`_counters`)
    errors: int = 0  # hrsp_5xx + eresp (response errors) + econ (connection errors)
    rtime: int = 0  # ms: haproxy's mean response time over the server's last 1024

    def __sub__(self, other: Counters) -> Counters:
        """The requests and errors between two readings (a mean is no count: none)."""
        return Counters(self.requests - other.requests, self.errors - other.errors)

    def window_ms(self, before: Counters) -> float | None:
        """The mean response time of the requests since ``before``, worked out from
        haproxy's moving mean: up to 1024 requests it is the mean of all of them, then
        each new one replaces 1/1024 of it (an estimate, to the millisecond haproxy
        rounds to). None when no request came."""
        new = self.requests - before.requests
        if new <= 0:
            return None
        if self.requests <= RTIME_SAMPLES:
            total = self.rtime * self.requests - before.rtime * before.requests
            return max(0.0, total / new)
        kept = (1 - 1 / RTIME_SAMPLES) ** new
        return max(0.0, (self.rtime - before.rtime * kept) / (1 - kept))

    def went_back(self, before: Counters) -> bool:
        """Lower than ``before``: haproxy restarted (or its counters were cleared), so
        the difference counts nothing."""
        return self.requests < before.requests or self.errors < before.errors


class Rotation(Protocol):
    """Taking a node out of the load balancer's rotation and back: what a strategy, the
    batches, the canary and the warm-up ask of `Balancer` (and the tests of a fake)."""

    def mismatches(self, nodes: tuple[NodeConfig, ...]) -> list[str]: ...

    def drain(self, node: NodeConfig) -> float: ...

    def idle(self, node: NodeConfig) -> float:
        """Wait (bounded) for the node's open sessions to end, changing nothing."""
        ...

    def ready(self, node: NodeConfig, weight: int = 100) -> int:
        """Back in rotation, at ``weight`` percent if possible; the percent it got."""
        ...

    def set_weight(self, node: NodeConfig, percent: int) -> None: ...

    def counters(self, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
        """Each node's request and error counters (cumulative), by label."""
        ...

    def set_state(self, node: NodeConfig, state: Admin) -> None: ...

    def states(self, nodes: tuple[NodeConfig, ...]) -> dict[str, State]:
        """Each node's state by label."""
        ...

    def wait_up(self, node: NodeConfig) -> State:
        """Wait (bounded) until the balancer reports the node UP; return its last state."""
        ...


class Balancer:
    """A client of one haproxy runtime API (`fabfile.cluster.runtimeapi`: a socket here,
    HOST:PORT, or a socket on the balancer's own host over SSH)."""

    def __init__(self, address: str | Channel, state_file: str = "") -> None:
        self.channel: Channel = Local(address) if isinstance(address, str) else address
        self.name = self.channel.name
        self.state_file = state_file

    def command(self, line: str) -> str:
        """Send one command and return haproxy's whole answer."""
        return self.channel.send(line)

    def set_state(self, node: NodeConfig, state: Admin) -> None:
        answer = self.command(f"set server {node.lb_backend}/{node.lb_server} state {state}")
        if answer.strip():
            raise NodeError(f"haproxy refused 'state {state}' for {node.label}: {answer.strip()}")
        self.save_state()

    def save_state(self) -> None:
        """Write haproxy's server states where its ``server-state-file`` reads them
        at the next reload, on haproxy's host (nothing without ``lb_state_file``)."""
        if self.state_file:
            self.channel.write_states(self.state_file)

    def row(self, node: NodeConfig) -> dict[str, str]:
        """The node's server line of ``show stat`` (``scur``, ``status``, ...)."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        for row in rows:
            if (row.get("pxname"), row.get("svname")) == (node.lb_backend, node.lb_server):
                return row
        raise NodeError(
            f"haproxy has no server {node.lb_backend}/{node.lb_server} for {node.label}; "
            "check lb_backend and lb_server in .config"
        )

    def states(self, nodes: tuple[NodeConfig, ...]) -> dict[str, State]:
        """Each node's state in haproxy, by label (MISSING for a server it lacks)."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        found = {(r.get("pxname"), r.get("svname")): r.get("status") or "" for r in rows}
        return {
            node.label: State.of(found.get((node.lb_backend, node.lb_server))) for node in nodes
        }

    def counters(self, nodes: tuple[NodeConfig, ...]) -> dict[str, Counters]:
        """Each node's request and error counters, by label (zeros for a missing server)."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        found = {(r.get("pxname"), r.get("svname")): _counters(r) for r in rows}
        return {
            node.label: found.get((node.lb_backend, node.lb_server), Counters()) for node in nodes
        }

    def set_weight(self, node: NodeConfig, percent: int) -> None:
        """The node's share of new requests, relative to its weight in haproxy's file."""
        server = f"{node.lb_backend}/{node.lb_server}"
        answer = self.command(f"set weight {server} {percent}%")
        if answer.strip():
            raise NodeError(f"haproxy refused weight {percent}% for {node.label}: {answer.strip()}")
        if percent == 100:
            self.save_state()  # the end of a ramp survives a reload of haproxy

    def mismatches(self, nodes: tuple[NodeConfig, ...]) -> list[str]:
        """Every node whose haproxy server is missing or points elsewhere, in words.

        A swapped ``lb_server`` (or ``status_url``) would drain one node and restart
        another: requests fail while the deploy reports success. haproxy's own table
        (``show servers state``) says where each server sends traffic; which key to fix
        is `fabfile.cluster.mismatch`'s to say.
        """
        problems = []
        for backend in sorted({node.lb_backend for node in nodes}):
            servers = self._servers(backend)
            for node in (n for n in nodes if n.lb_backend == backend):
                problem = mismatch(node, servers, nodes)
                if problem:
                    problems.append(problem)
        return problems

    def _servers(self, backend: str) -> dict[str, tuple[str, int]]:
        """Server name -> (address, port) in ``backend``, from haproxy's state table."""
        lines = self.command(f"show servers state {backend}").splitlines()
        header = next((ln[2:].split() for ln in lines if ln.startswith("# be_id")), [])
        servers = {}
        for line in lines:
            fields = line.split()
            if not header or len(fields) != len(header) or line.startswith("#"):
                continue
            row = dict(zip(header, fields, strict=True))
            port = int(row["srv_port"]) if row.get("srv_port", "").isdigit() else 0
            servers[row["srv_name"]] = (normal(row["srv_addr"]), port)
        return servers

    def drain(self, node: NodeConfig) -> float:
        """Stop new requests and wait (bounded) until in-flight ones are done."""
        self.set_state(node, Admin.DRAIN)
        return self.idle(node)

    def idle(self, node: NodeConfig) -> float:
        """Wait (bounded by ``drain_timeout``) until the node has no session open,
        leaving its state as it is (a node someone else took out of rotation)."""
        started = time.monotonic()
        deadline = started + node.drain_timeout
        while int(self.row(node).get("scur") or 0) > 0 and time.monotonic() < deadline:
            inflight.pause(0.01)  # a stopped fan-out ends it
        return time.monotonic() - started

    def ready(self, node: NodeConfig, weight: int = 100) -> int:
        """Back in rotation now: the tool has just verified /status, which is what
        haproxy's own check asks, so its health is set up rather than waiting up to
        a check interval for haproxy to find out. At ``weight`` percent when haproxy
        can give it that share (not with a static balance algorithm, nor a weight in
        its file too small to split), else at full weight (which also ends a ramp an
        earlier run left half-way); return the percent it got."""
        server = f"{node.lb_backend}/{node.lb_server}"
        if weight < 100 and not self._splittable(server, weight):
            weight = 100
        answer = self.command(
            f"set weight {server} {weight}%; set server {server} state {Admin.READY}; "
            f"set server {server} health up"
        )
        if answer.strip():
            raise NodeError(f"haproxy refused to put {node.label} back: {answer.strip()}")
        self.save_state()
        return weight

    def _splittable(self, server: str, percent: int) -> bool:
        """Whether ``percent`` of the server's configured weight is a weight above 0
        that haproxy accepts (``get weight`` says '100 (initial 100)')."""
        answer = self.command(f"get weight {server}")
        numbers = [int(word) for word in re.findall(r"\d+", answer)]
        initial = numbers[-1] if len(numbers) >= 2 else 0
        if initial * percent // 100 < 1:
            return False
        answer = self.command(f"set weight {server} {percent}%")  # a static algorithm refuses
        return not answer.strip()

    def wait_up(self, node: NodeConfig) -> State:
        """Wait until haproxy reports the node UP (bounded); return the state last seen."""
        deadline = time.monotonic() + UP_TIMEOUT
        state = self.states((node,))[node.label]
        while state != State.UP and time.monotonic() < deadline:
            time.sleep(0.02)
            state = self.states((node,))[node.label]
        return state


def _counters(row: dict[str, str]) -> Counters:
    def number(name: str) -> int:
        value = row.get(name) or "0"
        return int(value) if value.isdigit() else 0

    failed = number("eresp") + number("econ")  # no answer: the server failed or refused
    errors = number("hrsp_5xx") + failed
    if row.get("hrsp_2xx", "").isdigit():  # HTTP mode: every answer the server gave
        requests = sum(number(f"hrsp_{kind}") for kind in _ANSWERS) + failed
    else:  # TCP mode has no answers to count: the times haproxy chose the server
        requests = number("lbtot")
    return Counters(requests=requests, errors=errors, rtime=number("rtime"))


# A request a cookie sends to its server (sticky users, blue/green's HOST cookie) is not
# in ``lbtot``, which counts only the times the balancing algorithm chose the server:
# with it, sticky users' errors counted and their requests did not. Every answer is one.
_ANSWERS = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
