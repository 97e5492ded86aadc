"""A production-shaped sandbox: a bastion is the only way in, and nobody is root.

Beside `sandbox.cluster`'s nodes (sshd under ``tini -s`` on their own loopback
addresses) it runs a bastion sshd and makes the machine look like a real fleet:

- the coordinator runs ``deploy`` as the non-root user ``wd-operator``, whose TCP
  traffic to every node address is rejected by iptables (``-m owner``): it reaches
  the bastion only, and what reaches a node went through it (sshd forwards as the
  logged-in user, ``wd-deploy``, whom no rule stops);
- the nodes let ``wd-deploy`` in (not root: the sandbox's own root login stays for
  starting instances at set-up); Jetty runs as ``jetty`` and Tomcat as ``tomcat``
  (Debian's package users), their webapps owned by them, the node's home by root;
  ``wd-deploy`` may write only ``~/releases``;
- a sudoers file lets ``wd-deploy`` run commands as root without a password, so
  ``become_user = root`` installs the files and restarts (per host, by the absolute
  path of the node's script, as sudo gives root its own HOME);
- load-balancer hosts (``lb1``, ... at .250, ...) are reached as nodes are (`sandbox.balancers`).

Users are created when missing and kept; the iptables rules (found again by their
comment, which names the root) and the sudoers file are removed by `down`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import ipaddress
import json
import os
import pwd
import shlex
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from . import cluster as nodes
from . import haproxy, tomcat, tomcat_conf
from .cluster import Cluster

OPERATOR = "wd-operator"  # runs deploy on the coordinator
DEPLOY_USER = "wd-deploy"  # logs in to the bastion and the nodes
JETTY_USER = "jetty"
TOMCAT_USER = "tomcat"
BECOME = "root"
STATE = "prod.json"
SUDOERS_DIR = Path("/etc/sudoers.d")
# sudo as root without a password; as ``nobody`` only with one (what a test of a sudo
# that wants a password names in become_user). Every sandbox's file says the same, and
# none is rewritten while it runs: they share wd-deploy, and sudo applies the last rule
# that matches, from whichever file sorts last.
ASKS_PASSWORD = "nobody"
NOPASSWD = f"{DEPLOY_USER} ALL=({BECOME}) NOPASSWD: ALL\n{DEPLOY_USER} ALL=({ASKS_PASSWORD}) ALL\n"
PerHost = Callable[[str], dict[str, str]]  # a node's address -> keys of its [host:] section


@dataclasses.dataclass(frozen=True)
class Prod:
    """A production-shaped sandbox: its nodes, its bastion, and what runs on the nodes."""

    cluster: Cluster
    bastion: str
    runtime: str = "jetty"  # or "tomcat"
    balancers: tuple[str, ...] = ()  # the load-balancer hosts' addresses

    @property
    def aliases(self) -> dict[str, str]:
        """The nodes' names in ``hosts`` (ssh_config says where they are)."""
        return {f"web{i}": a for i, a in enumerate(self.cluster.addresses, start=1)}

    @property
    def lb_aliases(self) -> dict[str, str]:
        """The load-balancer hosts' names in ssh_config (``lb_socket = lb1:/path``)."""
        return {f"lb{i}": a for i, a in enumerate(self.balancers, start=1)}

    @property
    def ssh_config(self) -> Path:
        return self.cluster.root / "coordinator" / "ssh_config"

    @property
    def operator_home(self) -> Path:
        return self.cluster.root / "operator"

    @property
    def sudoers(self) -> Path:
        """This sandbox's sudoers file (a name sudo reads: no dot, no ``~``)."""
        tag = hashlib.sha256(str(self.cluster.root).encode()).hexdigest()[:12]
        return SUDOERS_DIR / f"wardeploy-prod-{tag}"

    @property
    def comment(self) -> str:
        """What marks this sandbox's iptables rules."""
        return f"wardeploy-prod:{self.cluster.root}"

    def script(self, address: str) -> Path:
        """The node's control script, run as root through sudo."""
        name = "jetty" if self.runtime == "jetty" else "tomcat"
        return self.cluster.home(address) / "bin" / name

    def save(self) -> None:
        data = {"bastion": self.bastion, "runtime": self.runtime, "balancers": self.balancers}
        (self.cluster.root / STATE).write_text(json.dumps(data))

    @classmethod
    def load(cls, root: Path) -> Prod | None:
        found = Cluster.load(root)
        try:
            data = json.loads((root / STATE).read_text())
        except (OSError, ValueError):
            return None
        lbs = tuple(data.get("balancers", ()))
        return cls(found, data["bastion"], data["runtime"], lbs) if found else None


def default_bastion(first: str) -> str:
    """The bastion's address when none is given: .254 of the nodes' /24."""
    return str(ipaddress.IPv4Network(f"{first}/24", strict=False).broadcast_address - 1)


def up(
    root: Path,
    count: int = 3,
    first: str = "127.0.0.2",
    bastion: str = "",
    runtime: str = "jetty",
    balancers: int = 0,
) -> Prod:
    """Users, nodes, bastion, sudoers and firewall (``balancers``: `sandbox.balancers`');
    Jetty nodes wait for their first deploy, Tomcat hosts get their bases (`tomcat_hosts`)."""
    ensure_users()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the users of the nodes and the coordinator go through it
    prepare = _prepare_jetty if runtime == "jetty" else _prepare_ssh_only
    cluster = nodes.up(root, count, first, prepare=prepare)
    lbs = nodes.addresses(balancers, str(ipaddress.IPv4Address(default_bastion(first)) - 4))
    prod = Prod(cluster, bastion or default_bastion(first), runtime, lbs)
    prod.save()
    line = nodes.start_bastion(cluster, prod.bastion)  # any user with the key may jump
    with cluster.known_hosts.open("a") as known:
        known.write(line)
    write_sudoers(prod, NOPASSWD)
    block(prod)
    _coordinator(prod)
    return prod


def ensure_users() -> None:
    """Create the sandbox's users where missing (Debian's packages made jetty, tomcat).

    ``wd-deploy`` has no password but is not locked (``*``, not useradd's ``!``): sshd
    without PAM refuses a locked account even with a key. Two test workers may call it
    at once on a brand-new machine: the first makes the users, the second finds them
    (they take turns on a lock of this file, which leaves nothing behind)."""
    with open(__file__, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for user in (OPERATOR, DEPLOY_USER):
            home = ("--create-home", "--home-dir", f"/home/{user}", "--shell", "/bin/bash")
            _ensure_user(user, *home)
        for user in (JETTY_USER, TOMCAT_USER):
            _ensure_user(user, "--no-create-home", "--home-dir", "/nonexistent")
        shadow = Path("/etc/shadow").read_text().splitlines()
        if any(ln.startswith(f"{DEPLOY_USER}:!") for ln in shadow):
            subprocess.run(["usermod", "-p", "*", DEPLOY_USER], check=True, capture_output=True)


def _ensure_user(user: str, *options: str) -> None:
    if _exists(user):
        return
    done = subprocess.run(
        ["useradd", "--system", "--user-group", "--password", "*", *options, user],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 and not _exists(user):  # another run may have just made it
        raise RuntimeError(f"useradd {user}: {done.stderr.strip()}")


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def chown(path: Path, user: str, recursive: bool = False) -> None:
    entry = pwd.getpwnam(user)
    paths = [path, *(path.rglob("*") if recursive else [])]
    for each in paths:
        os.lchown(each, entry.pw_uid, entry.pw_gid)


def allow_logins(home: Path) -> None:
    """Let ``wd-deploy`` in (sshd reads its keys as that user: they must be readable)."""
    config = home / "etc" / "sshd_config"
    text = config.read_text()
    if "AllowUsers" not in text:
        config.write_text(text + f"AllowUsers {DEPLOY_USER} root\n")
    (home / "etc" / "authorized_keys").chmod(0o644)


def _prepare_ssh_only(cluster: Cluster, address: str) -> str:
    """A Tomcat host's sshd (its bases come with `tomcat_hosts`)."""
    line = nodes.prepare_ssh(cluster, address)
    _node_common(cluster, address)
    return line


def _prepare_jetty(cluster: Cluster, address: str) -> str:
    """A Jetty node as Debian's package would have it: Jetty's user owns what it writes."""
    line = nodes._prepare_node(cluster, address)
    _node_common(cluster, address)
    home = cluster.home(address)
    # as Debian's /var/lib/jetty9 and /run/jetty9 are jetty's (the JVM writes its state
    # and start log there; the PID file is start-stop-daemon's, as root)
    chown(home / "jetty-base", JETTY_USER, recursive=True)
    chown(home / "run", JETTY_USER)
    for name in ("jetty", "jetty-wait"):
        script = home / "bin" / name
        script.write_text(_as_root(script.read_text(), home, f"JETTY_USER={JETTY_USER}"))
    return line


def _node_common(cluster: Cluster, address: str) -> None:
    home = cluster.home(address)
    allow_logins(home)
    (home / "releases").mkdir(exist_ok=True)
    chown(home / "releases", DEPLOY_USER, recursive=True)


def _as_root(script: str, home: Path, *exports: str) -> str:
    """A node script run by root through sudo (whose HOME is root's): it names its node."""
    words = " ".join([f"HOME={shlex.quote(str(home))}", *exports])
    first, _, rest = script.partition("\n")
    return f"{first}\n# Run as root (sudo -n -u root): HOME is this node's.\nexport {words}\n{rest}"


def start_jetty(prod: Prod, war: Path, timeout: float = 60) -> None:
    """Install ``war`` on every Jetty node and start Jetty there as an admin would (root
    over the node's ssh); return once each answers /status."""
    for address in prod.cluster.addresses:
        target = prod.cluster.home(address) / "jetty-base" / "webapps" / "root.war"
        shutil.copyfile(war, target)
        chown(target, JETTY_USER)
        nodes.ssh(prod.cluster, address, f"{shlex.quote(str(prod.script(address)))} start")
    deadline = time.monotonic() + timeout
    for address in prod.cluster.addresses:
        while not _answers(prod.cluster.url(address)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{prod.cluster.url(address)} did not answer in {timeout} s")
            time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def tomcat_hosts(prod: Prod, instances: tuple[str, ...], replicate: bool) -> tomcat.Tomcats:
    """Tomcat bases owned by ``tomcat``, whose script (run by root) starts the JVM as
    ``tomcat``; none started yet (`start_tomcats`, or `tomcat.start_empty`)."""
    tomcats = tomcat.up(prod.cluster, instances, replicate)
    chown(tomcats.password_file, OPERATOR)
    for address in prod.cluster.addresses:
        home = prod.cluster.home(address)
        prod.script(address).write_text(_as_root(_tomcat_script(), home))
        for name in instances:
            chown(tomcats.base(address, name), TOMCAT_USER, recursive=True)
    return tomcats


def start_tomcats(tomcats: tomcat.Tomcats, war: Path, properties: Path | None = None) -> None:
    """Install ``war`` in every instance and start them, in turn per colour (`tomcat.up`)."""
    for address, name in tomcats.all():
        tomcat.install(tomcats, address, name, war, properties)
    for name in tomcats.instances:
        tomcat.start_all(tomcats, [(a, name) for a in tomcats.cluster.addresses])


def _tomcat_script() -> str:
    """`sandbox.tomcat_conf`'s script, whose JVM drops to ``tomcat`` when it starts."""
    text = tomcat_conf.node_script()
    run = 'exec "$CATALINA_HOME/bin/catalina.sh" run'
    assert run in text, "sandbox.tomcat_conf's script changed: see _tomcat_script"
    drop = f"--reuid={TOMCAT_USER} --regid={TOMCAT_USER} --init-groups"
    return text.replace(run, f'exec setpriv {drop} "$CATALINA_HOME/bin/catalina.sh" run')


def write_sudoers(prod: Prod, rule: str) -> None:
    """Install ``rule`` as this sandbox's sudoers file, checked by visudo first."""
    SUDOERS_DIR.mkdir(exist_ok=True)
    staged = prod.cluster.root / "sudoers.staged"
    staged.write_text(f"# wardeploy's production-shaped sandbox at {prod.cluster.root}\n{rule}")
    subprocess.run(["visudo", "-cqf", str(staged)], check=True, capture_output=True)
    staged.chmod(0o440)
    os.replace(staged, prod.sudoers)


def _iptables(*words: str) -> str:
    done = subprocess.run(["iptables", "-w", *words], capture_output=True, text=True, check=True)
    return done.stdout


def rules(prod: Prod) -> list[str]:
    """This sandbox's OUTPUT rules, as ``iptables -S`` prints them."""
    marker = f'--comment "{prod.comment}"'
    return [ln for ln in _iptables("-S", "OUTPUT").splitlines() if marker in ln]


def block(prod: Prod) -> None:
    """Reject ``wd-operator``'s TCP to every node and balancer address (every port)."""
    if rules(prod):
        return
    for address in (*prod.cluster.addresses, *prod.balancers):
        _iptables(
            "-A", "OUTPUT", "-d", f"{address}/32", "-p", "tcp",
            "-m", "owner", "--uid-owner", OPERATOR, "-m", "comment", "--comment", prod.comment,
            "-j", "REJECT", "--reject-with", "tcp-reset",
        )  # fmt: skip


def unblock(prod: Prod) -> int:
    """Remove this sandbox's rules (whoever added them); return how many."""
    found = rules(prod)
    for line in found:
        words = shlex.split(line)
        _iptables("-D", *words[1:])  # `-A OUTPUT ...` as printed, deleted with the same words
    return len(found)


def _coordinator(prod: Prod) -> None:
    """The coordinator's side, owned by ``wd-operator``: its key, known_hosts, ssh_config."""
    cluster = prod.cluster
    blocks = [f"Host bastion\n  HostName {prod.bastion}\n"]
    hosts = {**prod.aliases, **prod.lb_aliases}
    blocks += [f"Host {alias}\n  HostName {a}\n" for alias, a in hosts.items()]
    behind = "web* lb*"  # the nodes and the load-balancer hosts
    blocks += [
        f"Host bastion {behind}\n  User {DEPLOY_USER}\n  IdentityFile {cluster.key}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {cluster.known_hosts}\n"
    ]
    blocks += [f"Host {behind}\n  ProxyJump bastion\n"]
    prod.ssh_config.write_text("\n".join(blocks))
    prod.operator_home.mkdir(exist_ok=True)
    chown(cluster.root, OPERATOR)
    for path in (cluster.root / "coordinator", prod.operator_home):
        chown(path, OPERATOR, recursive=True)


def haproxy_up(prod: Prod, tomcats: tomcat.Tomcats | None = None, sticky: bool = False) -> Path:
    """haproxy in front of the Jetty nodes, or of ``tomcats`` (``sticky``: see
    `haproxy.tomcat_config_text`), its runtime API socket owned by ``wd-operator`` (who
    drains nodes)."""
    if tomcats is None:
        text = haproxy.config_text(prod.cluster, socket_user=OPERATOR)
    else:
        text = haproxy.tomcat_config_text(tomcats, sticky=sticky, socket_user=OPERATOR)
    return haproxy.up(prod.cluster, text)


def config_text(prod: Prod, text: str, per_host: PerHost) -> str:
    """Turn a sandbox ``.config`` (`sandbox.app`, `sandbox.tomcat_app`) into this one's:
    nodes by alias through ssh_config, ``wd-deploy`` with ``become_user = root``,
    ``per_host(address)``'s keys in each host's section, and ``known_hosts`` and
    ``http_via`` left to their defaults (ssh_config's ``UserKnownHostsFile``, as ``ssh
    -F`` reads it; ssh, for nodes behind a jump host)."""
    dropped = ("hosts =", "user =", "identity_file =", "known_hosts =", "restart =")
    lines = [ln for ln in text.splitlines() if not ln.startswith(dropped)]
    lines = [ln.replace("{host}", "{address}") if ln.startswith("status_url =") else ln
             for ln in lines]  # fmt: skip
    at = lines.index("[deploy]") + 1
    lines[at:at] = [
        f"hosts = {', '.join(prod.aliases)}",
        f"user = {DEPLOY_USER}",
        f"ssh_config = {prod.ssh_config}",
        f"become_user = {BECOME}",
    ]
    sections = {f"[host:{a}]": alias for alias, a in prod.aliases.items()}
    lines = [f"[host:{sections[ln]}]" if ln in sections else ln for ln in lines]
    for alias, address in prod.aliases.items():
        section = f"[host:{alias}]"
        if section not in lines:
            lines += ["", section]
        at = lines.index(section) + 1
        lines[at:at] = [f"{key} = {value}" for key, value in per_host(address).items()]
    return "\n".join(lines) + "\n"


def down(root: Path) -> list[int]:
    """Stop the bastion; remove the rules and the sudoers file (the nodes are
    `sandbox.cluster`'s and `sandbox.tomcat`'s to stop, balancers `sandbox.balancers`')."""
    prod = Prod.load(root)
    if prod is None:
        return []
    stopped = nodes.stop_bastion(prod.cluster, prod.bastion)
    unblock(prod)
    prod.sudoers.unlink(missing_ok=True)
    (root / STATE).unlink(missing_ok=True)
    return stopped


def remove(root: Path) -> None:
    """Remove a stopped sandbox's files (its nodes' belong to other users)."""
    shutil.rmtree(root, ignore_errors=True)
