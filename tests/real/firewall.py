"""A coordinator cut off from the nodes, on loopback alone: iptables rules that reject
what one process sends to the nodes' ports, and that process's ``deploy``.

The rules match the coordinator's group (``--gid-owner``), not its user: the sandbox
logs in to its nodes as root, and a node's sshd forwards what the coordinator asks
through SSH as that user, so a rule on uid 0 would cut the tunnel too. The test's
``deploy`` runs as root in a group of its own: it reads every file root can, and
only the packets it sends itself are refused. Every rule is removed by the test that
added it, in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

# One group per test run, derived from the run's own addresses, so that two runs on
# the machine never share (or remove) each other's rules.
_FIRST = os.environ.get("WARDEPLOY_TEST_FIRST", "127.0.1.2")
GID = 42000 + int(_FIRST.split(".")[2])


def _rule(address: str, port: int | None) -> list[str]:
    ports = ["--dport", str(port)] if port is not None else []
    return [
        "OUTPUT",
        "-d",
        f"{address}/32",
        "-p",
        "tcp",
        *ports,
        "-m",
        "owner",
        "--gid-owner",
        str(GID),
        "-j",
        "REJECT",
    ]


@contextlib.contextmanager
def rejected(targets: Sequence[tuple[str, int | None]]) -> Iterator[None]:
    """Reject the coordinator's TCP to each (address, port) (None: every port)."""
    added: list[list[str]] = []
    try:
        for address, port in targets:
            rule = _rule(address, port)
            subprocess.run(["iptables", "-w", "-I", *rule], check=True)
            added.append(rule)
        yield
    finally:
        for rule in added:
            subprocess.run(["iptables", "-w", "-D", *rule], check=False)


def left() -> list[str]:
    """Rules of this run still in OUTPUT (none, once every test removed its own)."""
    listed = subprocess.run(["iptables", "-w", "-S", "OUTPUT"], capture_output=True, text=True)
    return [line for line in listed.stdout.splitlines() if f"--gid-owner {GID}" in line]


def deploy(
    argv: Sequence[str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``deploy ARGV`` in ``cwd``, run as root in the coordinator's own group."""
    program = shutil.which("deploy")
    assert program is not None, "no deploy on PATH: run the tests with the venv's bin first"
    return subprocess.run(
        [program, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        group=GID,
        extra_groups=[],
        check=False,
    )


def reaches(address: str, port: int) -> str:
    """What the coordinator's group gets connecting to address:port: 'open' or the error."""
    script = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=2).close()\n"
        "    print('open')\n"
        "except OSError as error:\n"
        "    print(type(error).__name__)\n"
    )
    python = shutil.which("python3") or "python3"
    found = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, group=GID, extra_groups=[]
    )
    return found.stdout.strip()


def open_to_root(address: str, port: int) -> bool:
    """Whether this (root, group 0) process reaches address:port: the rule is the group's."""
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        return False
    return True
