"""Pre-flight: every target read in parallel, and refused before any release changes.

First it takes the deploy lock on every target node, all or nothing, in the round
trip that reads each node's releases directory (`fabfile.engine.clusterlock`): a node
held by another run refuses this one before anything is tidied or changed. Then, for
each node, it refuses a sudo that wants a password (``become_user``) and a releases
directory that belongs to another app (`fabfile.cluster.ownership`), reads ``/status``,
lets the runtime settle a restart still claimed there
(`fabfile.engine.runtimes.Runtime.settle`), says which config
files were edited on the node, and asks whether the node has room for what it lacks;
the strategy adds checks of its own (the load balancer's). A node whose ``/status``
answers on the node but not to this machine is refused (``--force`` deploys to it
anyway): nothing could verify it after its restart.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
from collections.abc import Sequence
from typing import Protocol

from ..app.appdir import AppDir
from ..app.config import AppConfig, NodeConfig
from ..app.ini import DEPLOY, HOST_PREFIX
from ..app.keys import KEYS_BY_NAME
from ..cluster import become, probe, tunnel
from ..cluster.holdings import Holdings
from ..cluster.ownership import Owner
from ..errors import NodeError, PreflightError
from ..records.history import Action
from . import fanout
from .clusterlock import ClusterLock, Taken
from .phase import Phase
from .plan import Plan
from .runtimes import Runtime
from .strategies.contract import Strategy
from .target import Target


class Preflight(Protocol):
    """The rollout as pre-flight uses it: what it reads with, and its questions about a node."""

    app: AppDir
    plan: Plan
    strategy: Strategy
    runtime: Runtime
    lock: ClusterLock | None

    @property
    def targets(self) -> Sequence[Target]: ...

    def set_phase(self, target: Target, phase: Phase, detail: str = "") -> None: ...

    def note(self, text: str) -> None: ...

    def drift(self, target: Target) -> list[str]: ...

    def room(self, target: Target, holdings: Holdings) -> str: ...


def preflight(rollout: Preflight) -> None:
    """Read every target in parallel; refuse before any release changes if one is unfit.

    (It does create the releases directory, remove partial uploads and clear
    restart claims that are over.)
    """
    for target in rollout.targets:
        rollout.set_phase(target, Phase.CHECKING)
    taken = rollout.lock.take(read=True) if rollout.lock is not None else Taken({}, {})
    check = functools.partial(_check, rollout, taken)
    errors = [e for e in fanout.each(check, rollout.targets) if e]
    refused = len(errors)
    errors += rollout.strategy.check(rollout.plan.nodes)  # the load balancer's, say
    if errors:
        on = f" on {refused} of {len(rollout.targets)} node(s)" if refused else ""
        raise PreflightError(
            f"pre-flight refused{on}; nothing was changed:\n" + "\n".join(f"  {e}" for e in errors)
        )


def _check(rollout: Preflight, taken: Taken, target: Target) -> str:
    try:
        if error := taken.errors.get(target.config.host):
            raise NodeError(error)  # the lock's round trip failed: not dialled twice
        target.holdings = taken.holdings.get(target.host) or target.node.holdings()
        refused = _sudo_refused(target) or _own_releases_dir(rollout, target)
        if refused:
            rollout.set_phase(target, Phase.FAILED, refused)
            return refused
        rollout.runtime.settle(target)
    except NodeError as error:
        rollout.set_phase(target, Phase.FAILED, str(error))
        return str(error)
    target.status = probe.probe(target.config)
    if unverifiable := _unreachable(rollout.plan, target):
        rollout.set_phase(target, Phase.FAILED, unverifiable)
        return unverifiable
    if drifted := rollout.drift(target):
        rollout.note(
            f"{target.host}: {', '.join(drifted)} on the node differs from what was deployed "
            "(edited there?); this deploy puts the deployed one back"
        )
    return rollout.room(target, target.holdings)


def _sudo_refused(target: Target) -> str:
    """Why ``become_user`` cannot work on the node: its sudo wants a password (asked in
    the holdings' round trip, before anything is installed)."""
    said = become.refused(target.holdings.become if target.holdings else None)
    c = target.config
    return become.refusal(c.label, c.user, c.become_user, said) if said else ""


def _unreachable(plan: Plan, target: Target) -> str:
    """Why a node that runs a release is refused because nothing could verify it after
    its restart: its ``/status`` answers on the node itself but not to this machine
    (a firewall, a bastion), or the way to it failed (its SSH, https's certificate).

    '' when it answered, or nothing needs it to (a staging, a retire, ``--force``, a
    first deploy to a node that serves nobody yet), or when the node itself finds its
    port shut or silent: its container is down (crashed, or stopped on purpose), and
    the restart is what mends it, as it always did (it goes first)."""
    node, status = target.config, target.status
    fresh = target.holdings is not None and target.holdings.current is None
    if status is None or status.code is not None or fresh:
        return ""
    if plan.force or plan.action in _UNVERIFIED:
        return ""
    anyway = "leave it out with --hosts, or deploy to it anyway with --force"
    if status.unreached:
        return (
            f"{node.label}: /status at {status.url} cannot be reached ({status.reason}), so "
            f"a deploy could not verify it after its restart; {anyway}"
        )
    if node.http_via == "ssh":
        return ""  # the node's own sshd found the port shut or silent: the container
    local = _from_the_node(target)
    if local.code is None:
        return ""
    again = probe.probe(node)  # after the node's answer: was this machine's miss a slow one?
    if again.code is not None:  # a container still starting answers late, to either side
        target.status = again
        return ""
    return (
        f"{node.label}: /status at {status.url} answers on the node itself "
        f"({local.describe()}) but not from this machine ({status.reason}), so a deploy "
        "could not verify it after its restart. Set http_via = ssh to ask it through its "
        f"SSH connection (or open that port to this machine); or {anyway}"
    )


def _from_the_node(target: Target) -> probe.Status:
    """The node's ``/status`` as the node itself reaches it, over its SSH connection."""
    local = dataclasses.replace(target.config, http_via="ssh")
    tunnel.carry(local, target.node)
    try:
        return probe.probe(local)
    finally:
        tunnel.drop(local, target.node)


_UNVERIFIED = (Action.STAGE, Action.RETIRE)  # nothing goes live: /status is not asked for


def owner(app: AppDir, plan: Plan) -> Owner:
    """This app, as a releases directory names its owner."""
    where = f"{socket.gethostname()}:{app.config.path}"
    return Owner(plan.release.coordinates, app.name, where)


def foreign(app: AppDir, plan: Plan, target: Target) -> str:
    """Why the node's releases directory is another app's ('' when it is this one's or
    names none): its owner record, or else a release of another app it runs."""
    holdings, ours = target.holdings, owner(app, plan)
    if holdings is None or not ours.artifact:
        return ""
    found = holdings.owner
    if found is None:  # named by nobody yet: what it runs says whose it has been
        runs = [r for r in (holdings.current, *holdings.held) if r is not None and r.coordinates]
        found = next((Owner(r.coordinates) for r in runs if r.coordinates != ours.artifact), None)
    if found is None or found.same_app(ours):
        return ""
    return _refusal(app.config, target.config, found)


def _own_releases_dir(rollout: Preflight, target: Target) -> str:
    """Refuse another app's releases directory; name this app in one that names none."""
    refused = foreign(rollout.app, rollout.plan, target)
    holdings = target.holdings
    if refused or holdings is None or holdings.owner is not None:
        return refused
    ours = owner(rollout.app, rollout.plan)
    if not ours.artifact:
        return ""
    found = target.node.claim_owner(ours)  # another app may have named itself meanwhile
    return (
        ""
        if found is None or found.same_app(ours)
        else _refusal(rollout.app.config, target.config, found)
    )


def _refusal(config: AppConfig, node: NodeConfig, other: Owner) -> str:
    """Two apps in one releases directory, said with the file and line to change."""
    section = config.source.section(HOST_PREFIX, node.host)
    if (section, "releases_dir") not in config.source.keys:
        section = DEPLOY
    unset = (section, "releases_dir") not in config.source.keys
    default = f", not set: the default is {KEYS_BY_NAME['releases_dir'].default}" if unset else ""
    return (
        f"{node.label}: releases_dir {node.releases_dir} belongs to another app on this "
        f"node, {other.describe()}; two apps in one releases directory overwrite each "
        "other's current release and prune each other's files: give this app a releases_dir "
        f"of its own ({config.where(section, 'releases_dir')}{default}; {{app}} in it names "
        f"the app directory); if that app is gone for good, remove {node.releases_dir}/owner "
        "on the node"
    )
