"""haproxy where it really runs: load-balancer hosts of a production-shaped sandbox.

`sandbox.prod` gives each balancer an address (.250, .251, ... of the nodes' /24), an
alias in the coordinator's ssh_config (``lb1``, ``lb2``, ... behind the bastion, as
``wd-deploy``) and the firewall rules that keep ``wd-operator`` off it. Here each gets
what a balancer host has: its own sshd (under ``tini -s``, letting ``wd-deploy`` in as
the nodes do) and its own Debian haproxy in front of the same nodes, its frontend on
the balancer's address. haproxy runs as root and keeps everything in ``ROOT/lbN/``:
the runtime API socket (root's, group ``haproxy``, mode 660: ``wd-deploy`` reaches it
only through ``sudo -n``, as on a real balancer), the master CLI, the PID, the log and
the server-state file it reads at a reload (``lb_state_file = ROOT/{balancer}/
haproxy.state``, written by the deploy tool on the balancer's host).

The tests read and set states directly, as root, through the local socket. `down`
stops every haproxy and sshd started here, by PID, before `sandbox.prod.down`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

from . import cluster as nodes
from . import haproxy, prod
from .prod import Prod
from .tomcat import Tomcats

GROUP = "haproxy"  # Debian's haproxy package's group: owns the runtime API socket
BACKEND = "web"


@dataclasses.dataclass(frozen=True)
class Lb:
    """One load-balancer host: its name (ssh_config alias, ``{balancer}``), its address
    and the directory its haproxy keeps its files in."""

    name: str
    address: str
    root: Path

    @property
    def site(self) -> haproxy.Site:
        return haproxy.Site(self.root, self.address, GROUP)

    @property
    def socket(self) -> Path:
        """The runtime API socket, as ``lb_socket`` names it after ``NAME:``."""
        return haproxy.socket_path(self.site)

    @property
    def state_file(self) -> Path:
        return haproxy.state_path(self.site)

    def url(self, path: str = "/") -> str:
        """A URL through this balancer's frontend."""
        return haproxy.url(self.site, path)


def of(box: Prod) -> list[Lb]:
    """The sandbox's balancers (`sandbox.prod.up`'s ``balancers``), by name."""
    root = box.cluster.root
    return [Lb(name, address, root / name) for name, address in box.lb_aliases.items()]


def up(box: Prod, tomcats: Tomcats | None = None, sticky: bool = False) -> list[Lb]:
    """Start every balancer host: sshd (its host key known to the coordinator), then
    haproxy in front of the Jetty nodes or of ``tomcats`` (``sticky``: see
    `sandbox.haproxy.tomcat_config_text`)."""
    lbs = of(box)
    known = box.cluster.known_hosts
    lines = [_start_host(box, lb) for lb in lbs]
    text = known.read_text()
    known.write_text(text + "".join(ln for ln in lines if ln not in text))
    for lb in lbs:
        lb.root.mkdir(exist_ok=True)
        lb.root.chmod(0o755)  # wd-deploy finds the socket there (and is refused by its mode)
        if tomcats is None:
            config = haproxy.config_text(box.cluster, site=lb.site)
        else:
            config = haproxy.tomcat_config_text(tomcats, sticky=sticky, site=lb.site)
        haproxy.up(lb.site, config)
    return lbs


def _start_host(box: Prod, lb: Lb) -> str:
    """The balancer host's sshd; return its known_hosts line."""
    line = nodes.prepare_ssh(box.cluster, lb.address)
    prod.allow_logins(box.cluster.home(lb.address))
    nodes.start_sshd(box.cluster, lb.address)
    return line


def lb_socket(lbs: list[Lb]) -> str:
    """``.config``'s ``lb_socket`` for these balancers: ``NAME:/path`` each, over SSH."""
    return ", ".join(f"{lb.name}:{lb.socket}" for lb in lbs)


def lb_state_file(box: Prod) -> str:
    """``.config``'s ``lb_state_file``: each balancer's own, on its host."""
    return str(box.cluster.root / "{balancer}" / "haproxy.state")


def configure(app_dir: Path, box: Prod, lbs: list[Lb]) -> None:
    """Point an app directory's ``.config`` (`sandbox.prod_app`) at ``lbs`` over SSH."""
    config = app_dir / ".config"
    keys = {"lb_socket": lb_socket(lbs), "lb_state_file": lb_state_file(box)}
    lines = config.read_text().splitlines()
    for key, value in keys.items():
        at = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key} ="))
        lines[at] = f"{key} = {value}"
    config.write_text("\n".join(lines) + "\n")  # the file keeps its owner (wd-operator)


def states(lb: Lb) -> dict[str, str]:
    """Each server's status in this balancer's haproxy (``show stat``), read as root."""
    text = haproxy.command(lb.site, "show stat").lstrip("# ")
    return {
        row["svname"]: row["status"]
        for row in csv.DictReader(io.StringIO(text))
        if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def set_state(lb: Lb, server: str, state: str) -> None:
    """``set server web/SERVER state STATE`` on this balancer only, as root."""
    answer = haproxy.command(lb.site, f"set server {BACKEND}/{server} state {state}").strip()
    if answer:
        raise RuntimeError(f"{lb.name}: set server {server} state {state}: {answer}")


def set_address(lb: Lb, server: str, address: str, port: int) -> None:
    """Point ``server`` elsewhere on this balancer only, as root (a stale balancer)."""
    line = f"set server {BACKEND}/{server} addr {address} port {port}"
    answer = haproxy.command(lb.site, line).strip()
    if "change" not in answer:  # "IP changed from ...", or "no need to change ..."
        raise RuntimeError(f"{lb.name}: {line}: {answer}")


def wait_up(lb: Lb, server: str, timeout: float = 10) -> None:
    """Until this balancer reports ``server`` UP (a health check after ``ready``)."""
    deadline = time.monotonic() + timeout
    while (seen := states(lb).get(server, "")) != "UP":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{lb.name}: {server} is {seen or 'missing'}, not UP")
        time.sleep(0.1)


def reload(lb: Lb) -> int:
    """Reload this balancer's haproxy (it reads its server-state file); the new worker's PID."""
    return haproxy.reload(lb.site)


def stop_sshd(box: Prod, lb: Lb) -> None:
    """Take the balancer's sshd down, open sessions included: the host is unreachable
    while its haproxy keeps serving (a fault for tests)."""
    nodes.stop_sshd(box.cluster, lb.address)


def start_sshd(box: Prod, lb: Lb) -> None:
    nodes.start_sshd(box.cluster, lb.address)


def down(root: Path) -> list[int]:
    """Stop every balancer's haproxy and sshd, by PID; return haproxy's PIDs."""
    box = Prod.load(root)
    if box is None:
        return []
    stopped: list[int] = []
    for lb in of(box):
        stopped += haproxy.down(lb.site)
        nodes.stop_sshd(box.cluster, lb.address)
    return stopped
